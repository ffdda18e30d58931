#include "core/io/safetensors.h"

#include "core/errors.h"
#include "core/io/atomic_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <system_error>
#include <tuple>
#include <utility>

// The format stores little-endian bytes and we copy them into tensors unchanged.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace vitlab::safetensors {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kLengthPrefixBytes = 8;
// A valid header nests three levels (header, entry, shape); anything far deeper is an attack on the
// JSON parser's recursion, refused before parsing.
constexpr int kMaxJsonDepth = 32;
// Long names from hostile files would make error messages unreadable.
constexpr std::size_t kMaxQuotedNameBytes = 80;

struct DtypeInfo {
    const char* name;
    torch::ScalarType scalarType;
    std::uint64_t elementBytes;
};

// In the reference writer's data order: larger elements first, so that every tensor's data stays
// aligned to its element size after the 8-byte aligned header.
constexpr std::array<DtypeInfo, 10> kDtypes{{
    {"I64", torch::kLong, 8},
    {"F64", torch::kDouble, 8},
    {"F32", torch::kFloat, 4},
    {"I32", torch::kInt, 4},
    {"BF16", torch::kBFloat16, 2},
    {"F16", torch::kHalf, 2},
    {"I16", torch::kShort, 2},
    {"I8", torch::kChar, 1},
    {"U8", torch::kByte, 1},
    {"BOOL", torch::kBool, 1},
}};

template <typename Matches>
const DtypeInfo* findDtype(Matches matches)
{
    const auto found = std::find_if(kDtypes.begin(), kDtypes.end(), matches);
    return found == kDtypes.end() ? nullptr : &*found;
}

std::string quoted(const std::string& name)
{
    std::size_t cut = std::min(name.size(), kMaxQuotedNameBytes);
    while (cut < name.size() && cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80)
        --cut; // not inside a UTF-8 sequence
    std::string shown = name.substr(0, cut);
    std::replace_if(shown.begin(), shown.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }, '?');
    return "\"" + shown + (cut < name.size() ? "...\"" : "\"");
}

[[noreturn]] void fail(const std::string& source, const std::string& problem)
{
    throw FormatError(source + ": " + problem + ".");
}

struct Entry {
    std::string name;
    const DtypeInfo* dtype = nullptr;
    std::vector<std::int64_t> shape;
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
};

struct Header {
    std::vector<Entry> entries;
    Metadata metadata;
};

std::uint64_t decodeLength(const std::uint8_t* prefix)
{
    std::uint64_t length = 0;
    std::memcpy(&length, prefix, sizeof length);
    return length;
}

// `bytesAfterPrefix` is everything that follows the 8-byte length: header plus data.
void checkHeaderLength(std::uint64_t headerBytes, std::uint64_t bytesAfterPrefix, const std::string& source)
{
    if (headerBytes < 2)
        fail(source, "the header length is " + std::to_string(headerBytes) + " bytes, too short for a JSON object");
    if (headerBytes > kMaxHeaderBytes)
        fail(source, "the header length of " + std::to_string(headerBytes) + " bytes exceeds the limit of "
                         + std::to_string(kMaxHeaderBytes));
    if (headerBytes > bytesAfterPrefix)
        fail(source, "the header length of " + std::to_string(headerBytes) + " bytes exceeds the "
                         + std::to_string(bytesAfterPrefix) + " bytes that follow it");
}

// Checks what nlohmann would get wrong before it parses: nesting deep enough to exhaust the stack
// (tracking strings, so that brackets inside tensor names do not count), and NUL bytes, where it
// stops reading as if the input had ended. Valid JSON never holds a raw NUL.
void prescanHeader(const char* json, std::size_t size, const std::string& source)
{
    int depth = 0;
    bool inString = false;
    for (std::size_t i = 0; i < size; ++i) {
        const char c = json[i];
        if (c == '\0')
            fail(source, "the header holds a NUL byte at byte " + std::to_string(i) + ", which JSON does not allow");
        if (inString) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                inString = false;
        } else if (c == '"') {
            inString = true;
        } else if (c == '{' || c == '[') {
            if (++depth > kMaxJsonDepth)
                fail(source, "the header nests JSON deeper than " + std::to_string(kMaxJsonDepth) + " levels");
        } else if (c == '}' || c == ']') {
            --depth;
        }
    }
}

Metadata parseMetadata(const nlohmann::json& value, const std::string& source)
{
    if (!value.is_object())
        fail(source, "\"__metadata__\" is not a JSON object");
    Metadata metadata;
    for (const auto& [key, text] : value.items()) {
        if (!text.is_string())
            fail(source, "the metadata value for " + quoted(key) + " is not a string");
        metadata.emplace(key, text.get<std::string>());
    }
    return metadata;
}

std::uint64_t entryByteCount(const Entry& entry, const std::string& source)
{
    // Zero dimensions are skipped in the second product: torch computes strides from the other
    // dimensions, so they must fit in int64 even when the tensor is empty.
    std::uint64_t elements = 1;
    std::uint64_t nonZeroElements = 1;
    bool overflow = false;
    for (const std::int64_t dim : entry.shape) {
        const auto size = static_cast<std::uint64_t>(dim);
        overflow |= __builtin_mul_overflow(elements, size, &elements);
        if (size != 0)
            overflow |= __builtin_mul_overflow(nonZeroElements, size, &nonZeroElements);
    }
    std::uint64_t bytes = 0;
    overflow |= __builtin_mul_overflow(elements, entry.dtype->elementBytes, &bytes);
    overflow |= nonZeroElements > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (overflow)
        fail(source, "tensor " + quoted(entry.name) + " has a shape whose size overflows 64 bits");
    return bytes;
}

Entry parseEntry(const std::string& name, const nlohmann::json& value, std::uint64_t dataBytes,
                 const std::string& source)
{
    const std::string what = "tensor " + quoted(name);
    if (!value.is_object())
        fail(source, what + " is described by a JSON " + value.type_name() + ", not an object");
    if (value.size() != 3 || !value.contains("dtype") || !value.contains("shape") || !value.contains("data_offsets"))
        fail(source, what + " must have exactly the fields \"dtype\", \"shape\" and \"data_offsets\"");

    Entry entry;
    entry.name = name;
    if (!value.at("dtype").is_string())
        fail(source, what + " has a dtype that is not a string");
    const std::string dtype = value.at("dtype").get<std::string>();
    entry.dtype = findDtype([&dtype](const DtypeInfo& info) { return dtype == info.name; });
    if (!entry.dtype)
        fail(source, what + " has the unsupported dtype " + quoted(dtype)
                         + " (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");

    // nlohmann stores non-negative integer literals as unsigned; negatives, fractions and
    // exponents arrive as other number types.
    const auto isCount = [](const nlohmann::json& v) { return v.is_number_unsigned(); };
    const nlohmann::json& shape = value.at("shape");
    if (!shape.is_array() || !std::all_of(shape.begin(), shape.end(), isCount))
        fail(source, what + " has a shape that is not a list of non-negative integers");
    for (const nlohmann::json& dim : shape) {
        const auto size = dim.get<std::uint64_t>();
        if (size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            fail(source, what + " has a dimension of " + std::to_string(size) + ", too large for a tensor");
        entry.shape.push_back(static_cast<std::int64_t>(size));
    }

    const nlohmann::json& offsets = value.at("data_offsets");
    if (!offsets.is_array() || offsets.size() != 2 || !isCount(offsets[0]) || !isCount(offsets[1]))
        fail(source, what + " has data_offsets that are not a pair of non-negative integers");
    entry.begin = offsets[0].get<std::uint64_t>();
    entry.end = offsets[1].get<std::uint64_t>();
    const std::string range = "[" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) + "]";
    if (entry.begin > entry.end)
        fail(source, what + " has data_offsets " + range + " that end before they begin");
    if (entry.end > dataBytes)
        fail(source, what + " has data_offsets " + range + " beyond the " + std::to_string(dataBytes)
                         + "-byte data buffer");
    const std::uint64_t needed = entryByteCount(entry, source);
    if (entry.end - entry.begin != needed)
        fail(source, what + " has data_offsets " + range + " spanning " + std::to_string(entry.end - entry.begin)
                         + " bytes, but its dtype and shape need " + std::to_string(needed));
    return entry;
}

// The reference rule: sorted by offsets, the tensors must cover the data buffer exactly once.
void checkTiling(std::vector<Entry>& entries, std::uint64_t dataBytes, const std::string& source)
{
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
    });
    std::uint64_t covered = 0;
    const Entry* previous = nullptr;
    for (const Entry& entry : entries) {
        if (entry.begin < covered)
            fail(source, "tensors " + quoted(previous->name) + " and " + quoted(entry.name)
                             + " overlap in the data buffer");
        if (entry.begin > covered)
            fail(source, "bytes " + std::to_string(covered) + " to " + std::to_string(entry.begin)
                             + " of the data buffer belong to no tensor");
        covered = entry.end;
        previous = &entry;
    }
    if (covered != dataBytes)
        fail(source, "bytes " + std::to_string(covered) + " to " + std::to_string(dataBytes)
                         + " of the data buffer belong to no tensor");
}

// The one validation shared by parse(), load() and readHeader(): everything but the data bytes.
Header parseHeader(const char* json, std::size_t size, std::uint64_t dataBytes, const std::string& source)
{
    prescanHeader(json, size, source);
    nlohmann::json root;
    try {
        root = nlohmann::json::parse(json, json + size);
    } catch (const nlohmann::json::parse_error& error) {
        fail(source, "the header is not valid UTF-8 JSON (error at byte " + std::to_string(error.byte) + ")");
    } catch (const nlohmann::json::exception&) {
        fail(source, "the header is not valid UTF-8 JSON");
    }
    if (!root.is_object())
        fail(source, std::string("the header is a JSON ") + root.type_name() + ", not an object");

    Header header;
    for (const auto& [name, value] : root.items()) {
        if (name == "__metadata__")
            header.metadata = parseMetadata(value, source);
        else
            header.entries.push_back(parseEntry(name, value, dataBytes, source));
    }
    checkTiling(header.entries, dataBytes, source);
    return header;
}

std::ifstream openForReading(const fs::path& path, std::uint64_t& fileSize)
{
    std::error_code error;
    if (fs::is_directory(path, error))
        throw IoError("cannot read " + path.string() + ": it is a folder, not a .safetensors file");
    errno = 0;
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw IoError("cannot open " + path.string() + ": " + systemMessage(errno));
    in.seekg(0, std::ios::end);
    const std::streamoff end = in.tellg();
    in.seekg(0, std::ios::beg);
    if (end < 0 || !in)
        throw IoError("cannot read " + path.string() + ": its size cannot be determined");
    fileSize = static_cast<std::uint64_t>(end);
    return in;
}

void readExactly(std::ifstream& in, void* target, std::uint64_t bytes, const fs::path& path)
{
    if (bytes == 0)
        return;
    errno = 0;
    in.read(static_cast<char*>(target), static_cast<std::streamsize>(bytes));
    if (static_cast<std::uint64_t>(in.gcount()) != bytes)
        throw IoError("cannot read " + path.string() + ": " + systemMessage(errno));
}

void checkFileLength(std::uint64_t fileSize, const std::string& source)
{
    if (fileSize < kLengthPrefixBytes)
        fail(source, "the input is " + std::to_string(fileSize) + " bytes long, too short for the 8-byte header length");
}

} // namespace

File parse(const std::uint8_t* data, std::size_t size, const std::string& sourceName)
{
    checkFileLength(size, sourceName);
    const std::uint64_t headerBytes = decodeLength(data);
    checkHeaderLength(headerBytes, size - kLengthPrefixBytes, sourceName);
    const std::uint64_t dataStart = kLengthPrefixBytes + headerBytes;
    const std::uint64_t dataBytes = size - dataStart;
    Header header = parseHeader(reinterpret_cast<const char*>(data + kLengthPrefixBytes), headerBytes, dataBytes,
                                sourceName);

    File file;
    file.metadata = std::move(header.metadata);
    for (const Entry& entry : header.entries) {
        torch::Tensor tensor = torch::empty(entry.shape, torch::TensorOptions().dtype(entry.dtype->scalarType));
        if (entry.end > entry.begin)
            std::memcpy(tensor.data_ptr(), data + dataStart + entry.begin, entry.end - entry.begin);
        file.tensors.emplace(entry.name, std::move(tensor));
    }
    return file;
}

File load(const std::filesystem::path& path)
{
    std::uint64_t fileSize = 0;
    std::ifstream in = openForReading(path, fileSize);
    std::vector<std::uint8_t> bytes(fileSize);
    readExactly(in, bytes.data(), fileSize, path);
    return parse(bytes.data(), bytes.size(), path.string());
}

std::map<std::string, TensorInfo> readHeader(const std::filesystem::path& path, Metadata* metadata)
{
    std::uint64_t fileSize = 0;
    std::ifstream in = openForReading(path, fileSize);
    const std::string source = path.string();
    checkFileLength(fileSize, source);
    std::array<std::uint8_t, kLengthPrefixBytes> prefix{};
    readExactly(in, prefix.data(), prefix.size(), path);
    const std::uint64_t headerBytes = decodeLength(prefix.data());
    checkHeaderLength(headerBytes, fileSize - kLengthPrefixBytes, source);
    std::string json(headerBytes, '\0');
    readExactly(in, json.data(), headerBytes, path);

    Header header = parseHeader(json.data(), json.size(), fileSize - kLengthPrefixBytes - headerBytes, source);
    std::map<std::string, TensorInfo> infos;
    for (Entry& entry : header.entries)
        infos.emplace(entry.name, TensorInfo{entry.dtype->name, std::move(entry.shape)});
    if (metadata)
        *metadata = std::move(header.metadata);
    return infos;
}

std::vector<std::uint8_t> serialize(const TensorMap& tensors, const Metadata& metadata)
{
    struct Item {
        const std::string* name;
        const DtypeInfo* dtype;
        torch::Tensor tensor;
    };
    std::vector<Item> items;
    items.reserve(tensors.size());
    for (const auto& [name, tensor] : tensors) {
        const std::string what = "cannot save tensor " + quoted(name);
        if (name == "__metadata__")
            throw FormatError(what + ": the name is reserved for the file's metadata.");
        if (!tensor.defined())
            throw FormatError(what + ": it is undefined.");
        if (tensor.layout() != torch::kStrided)
            throw FormatError(what + ": only dense tensors can be saved.");
        const auto type = tensor.scalar_type();
        const DtypeInfo* dtype = findDtype([type](const DtypeInfo& info) { return type == info.scalarType; });
        if (!dtype)
            throw FormatError(what + ": its dtype " + std::string(c10::toString(tensor.scalar_type()))
                              + " has no safetensors equivalent.");
        items.push_back({&name, dtype, tensor.detach().to(torch::kCPU).contiguous()});
    }
    // The reference writer's order, so files are byte-identical to Python's: by dtype in kDtypes'
    // order, then by name (the map's order, kept by the stable sort).
    std::stable_sort(items.begin(), items.end(),
                     [](const Item& a, const Item& b) { return a.dtype < b.dtype; });

    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty())
        header["__metadata__"] = metadata;
    std::uint64_t offset = 0;
    for (const Item& item : items) {
        const std::uint64_t bytes = item.tensor.numel() * item.dtype->elementBytes;
        nlohmann::ordered_json entry = nlohmann::ordered_json::object();
        entry["dtype"] = item.dtype->name;
        entry["shape"] = item.tensor.sizes().vec();
        entry["data_offsets"] = {offset, offset + bytes};
        header[*item.name] = std::move(entry);
        offset += bytes;
    }
    std::string json;
    try {
        json = header.dump();
    } catch (const nlohmann::json::exception&) {
        throw FormatError("cannot save tensors: a tensor name or metadata string is not valid UTF-8.");
    }
    // Padding the header to 8 bytes keeps the data aligned for readers that map the file.
    json.append((8 - json.size() % 8) % 8, ' ');

    std::vector<std::uint8_t> out(kLengthPrefixBytes + json.size() + offset);
    const std::uint64_t headerBytes = json.size();
    std::memcpy(out.data(), &headerBytes, kLengthPrefixBytes);
    std::memcpy(out.data() + kLengthPrefixBytes, json.data(), json.size());
    std::uint8_t* cursor = out.data() + kLengthPrefixBytes + json.size();
    for (const Item& item : items) {
        const std::size_t bytes = item.tensor.numel() * item.dtype->elementBytes;
        if (bytes > 0)
            std::memcpy(cursor, item.tensor.data_ptr(), bytes);
        cursor += bytes;
    }
    return out;
}

void save(const std::filesystem::path& path, const TensorMap& tensors, const Metadata& metadata)
{
    const std::vector<std::uint8_t> bytes = serialize(tensors, metadata);
    writeFileAtomically(path, bytes.data(), bytes.size());
}

} // namespace vitlab::safetensors
