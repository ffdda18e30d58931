#include "core/errors.h"
#include "core/io/safetensors.h"
#include "test_support.h"

#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <cstring>
#include <limits>

#include <csignal>

#include <sys/resource.h>
#include <unistd.h>

using namespace vitlab;
namespace fs = std::filesystem;

namespace {

QByteArray lengthPrefix(quint64 length)
{
    QByteArray prefix(8, '\0');
    std::memcpy(prefix.data(), &length, sizeof length);
    return prefix;
}

QByteArray fileWithHeader(const QByteArray& json, const QByteArray& data = {})
{
    return lengthPrefix(json.size()) + json + data;
}

QByteArray toQByteArray(const std::vector<std::uint8_t>& bytes)
{
    return QByteArray(reinterpret_cast<const char*>(bytes.data()), static_cast<int>(bytes.size()));
}

safetensors::File parseBytes(const QByteArray& bytes)
{
    return safetensors::parse(reinterpret_cast<const std::uint8_t*>(bytes.constData()),
                              static_cast<std::size_t>(bytes.size()), "test input");
}

QByteArray littleEndianFloats(std::initializer_list<float> values)
{
    QByteArray bytes;
    for (const float value : values)
        bytes.append(reinterpret_cast<const char*>(&value), sizeof value);
    return bytes;
}

void writeFile(const fs::path& path, const QByteArray& bytes)
{
    QFile file(QString::fromStdString(path.string()));
    QVERIFY(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
    QCOMPARE(file.write(bytes), qint64(bytes.size()));
}

QByteArray readFile(const fs::path& path)
{
    QFile file(QString::fromStdString(path.string()));
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

// Same dtype, shape and bytes: NaN payloads and signed zeros must survive, so no numeric compare.
bool bitIdentical(const torch::Tensor& a, const torch::Tensor& b)
{
    if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes())
        return false;
    const torch::Tensor left = a.contiguous();
    const torch::Tensor right = b.contiguous();
    const std::size_t bytes = left.numel() * left.element_size();
    return bytes == 0 || std::memcmp(left.data_ptr(), right.data_ptr(), bytes) == 0;
}

// Arbitrary bit patterns of `dtype` (bools only 0 and 1, the only valid ones).
torch::Tensor randomBits(torch::ScalarType dtype, std::vector<std::int64_t> shape)
{
    std::int64_t numel = 1;
    for (const std::int64_t dim : shape)
        numel *= dim;
    const std::int64_t bytes = numel * static_cast<std::int64_t>(c10::elementSize(dtype));
    const torch::Tensor raw = torch::randint(0, dtype == torch::kBool ? 2 : 256, {bytes}, torch::kUInt8);
    return raw.view(dtype).reshape(shape);
}

QStringList temporaryLeftovers(const fs::path& folder)
{
    QStringList names;
    for (const auto& item : fs::directory_iterator(folder))
        if (item.path().filename().string().find(".tmp-") != std::string::npos)
            names << QString::fromStdString(item.path().filename().string());
    return names;
}

fs::path timmFixture(const char* name)
{
    return test::timmFixturesDir() / name;
}

const QByteArray kValidEntry = R"("dtype":"F32","shape":[1],"data_offsets":[0,4])";

} // namespace

class TestSafetensors : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void roundTripsEveryDtypeBitExactly()
    {
        const std::vector<std::pair<const char*, torch::ScalarType>> dtypes{
            {"F64", torch::kDouble}, {"F32", torch::kFloat}, {"F16", torch::kHalf}, {"BF16", torch::kBFloat16},
            {"I64", torch::kLong},   {"I32", torch::kInt},   {"I16", torch::kShort}, {"I8", torch::kChar},
            {"U8", torch::kByte},    {"BOOL", torch::kBool}};
        safetensors::TensorMap tensors;
        for (const auto& [name, dtype] : dtypes) {
            const std::string prefix = std::string(name) + ".";
            tensors[prefix + "scalar"] = randomBits(dtype, {});
            tensors[prefix + "empty"] = randomBits(dtype, {0});
            tensors[prefix + "empty3d"] = randomBits(dtype, {2, 0, 3});
            tensors[prefix + "matrix"] = randomBits(dtype, {3, 5});
            tensors[prefix + "transposed"] = randomBits(dtype, {4, 3}).t(); // not contiguous
        }
        const safetensors::Metadata metadata{{"format", "pt"}, {"note", "ünïcödé \"quoted\""}, {"", ""}};

        const std::vector<std::uint8_t> bytes = safetensors::serialize(tensors, metadata);
        const safetensors::File file = safetensors::parse(bytes.data(), bytes.size());
        QCOMPARE(file.tensors.size(), tensors.size());
        QVERIFY(file.metadata == metadata);
        for (const auto& [name, tensor] : tensors) {
            const auto found = file.tensors.find(name);
            QVERIFY2(found != file.tensors.end(), name.c_str());
            QVERIFY2(bitIdentical(found->second, tensor), name.c_str());
            QVERIFY(found->second.is_contiguous());
        }

        QTemporaryDir folder;
        const fs::path path = fs::path(folder.path().toStdString()) / "all.safetensors";
        safetensors::save(path, tensors, metadata);
        QCOMPARE(readFile(path), toQByteArray(bytes));
        const safetensors::File loaded = safetensors::load(path);
        const auto infos = safetensors::readHeader(path);
        for (const auto& [name, tensor] : tensors) {
            QVERIFY2(bitIdentical(loaded.tensors.at(name), tensor), name.c_str());
            QCOMPARE(infos.at(name).dtype, name.substr(0, name.find('.')));
            QCOMPARE(infos.at(name).shape, tensor.sizes().vec());
        }
    }

    void readsTheTimmFixture()
    {
        const fs::path path = timmFixture("vit.safetensors");
        const safetensors::File file = safetensors::load(path);
        QCOMPARE(file.tensors.size(), std::size_t(32));
        std::int64_t parameters = 0;
        for (const auto& [name, tensor] : file.tensors)
            parameters += tensor.numel();
        QCOMPARE(parameters, std::int64_t(67013)); // index.json's count for "vit"
        QCOMPARE(file.metadata.at("timm"), std::string("1.0.29.dev0"));

        const torch::Tensor qkv = file.tensors.at("blocks.0.attn.qkv.weight");
        QCOMPARE(qkv.scalar_type(), torch::kFloat);
        QCOMPARE(qkv.sizes().vec(), (std::vector<std::int64_t>{144, 48}));
        // Bit patterns read from the file with Python's struct module.
        const torch::Tensor qkvBits = qkv.flatten().view(torch::kInt);
        QCOMPARE(static_cast<quint32>(qkvBits[0].item<int>()), 0xbc8a75d8u);
        QCOMPARE(static_cast<quint32>(qkvBits[1].item<int>()), 0x3e0ae1c1u);
        QCOMPARE(static_cast<quint32>(qkvBits[2].item<int>()), 0x3df2df09u);
        const torch::Tensor posEmbed = file.tensors.at("pos_embed");
        QCOMPARE(posEmbed.sizes().vec(), (std::vector<std::int64_t>{1, 17, 48}));
        QCOMPARE(static_cast<quint32>(posEmbed.flatten().view(torch::kInt)[-1].item<int>()), 0xbf5c329bu);

        // Same dtype everywhere, so our writer lays the data out exactly as the fixture does.
        const QByteArray original = readFile(path);
        const QByteArray written = toQByteArray(safetensors::serialize(file.tensors, file.metadata));
        quint64 originalHeader = 0;
        quint64 writtenHeader = 0;
        std::memcpy(&originalHeader, original.constData(), 8);
        std::memcpy(&writtenHeader, written.constData(), 8);
        QVERIFY(original.mid(8 + static_cast<int>(originalHeader)) == written.mid(8 + static_cast<int>(writtenHeader)));
    }

    void readHeaderAgreesWithLoad()
    {
        const fs::path vit = timmFixture("vit.safetensors");
        int checked = 0;
        for (const auto& item : fs::directory_iterator(vit.parent_path())) {
            if (item.path().extension() != ".safetensors")
                continue;
            const safetensors::File file = safetensors::load(item.path());
            safetensors::Metadata metadata;
            const auto infos = safetensors::readHeader(item.path(), &metadata);
            QCOMPARE(infos.size(), file.tensors.size());
            QVERIFY(metadata == file.metadata);
            for (const auto& [name, info] : infos) {
                const torch::Tensor& tensor = file.tensors.at(name);
                QCOMPARE(info.shape, tensor.sizes().vec());
                QCOMPARE(info.dtype, std::string("F32"));
                QCOMPARE(tensor.scalar_type(), torch::kFloat);
            }
            ++checked;
        }
        QVERIFY(checked >= 2);
        const auto infos = safetensors::readHeader(vit);
        QCOMPARE(infos.at("blocks.0.attn.qkv.weight").shape, (std::vector<std::int64_t>{144, 48}));
    }

    void writesTheReferenceBytes()
    {
        // Expected bytes from the reference implementation's own tests (huggingface/safetensors).
        const QByteArray data = littleEndianFloats({0, 1, 2, 3, 4, 5});
        const torch::Tensor values = torch::arange(6, torch::kFloat);
        QCOMPARE(toQByteArray(safetensors::serialize({{"attn.0", values.reshape({1, 2, 3})}})),
                 lengthPrefix(64) + R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})" + data);
        // A header of 65 bytes is padded with 7 spaces so the data starts 8-byte aligned.
        QCOMPARE(toQByteArray(safetensors::serialize({{"attn0", values.reshape({1, 1, 2, 3})}})),
                 lengthPrefix(72) + R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})"
                     + QByteArray(7, ' ') + data);
        QCOMPARE(toQByteArray(safetensors::serialize({})), lengthPrefix(8) + "{}" + QByteArray(6, ' '));
        QCOMPARE(toQByteArray(safetensors::serialize({}, {{"framework", "pt"}})),
                 lengthPrefix(40) + R"({"__metadata__":{"framework":"pt"}})" + QByteArray(5, ' '));
    }

    void ordersMixedDtypesAsTheReferenceWriter()
    {
        // The reference sorts by dtype (I64, F64, F32, I32, BF16, F16, I16, I8, U8, BOOL), then by
        // name, so each tensor starts at a multiple of its element size.
        const safetensors::TensorMap tensors{
            {"a", torch::tensor({1, 2, 3}, torch::kUInt8)},
            {"b", torch::tensor({1.5}, torch::kDouble)},
            {"c", torch::tensor({true, false}, torch::kBool)},
            {"d", torch::tensor(7, torch::kLong)},
            {"e", torch::tensor({1.0}, torch::kHalf)},
            {"f", torch::tensor({1.0}, torch::kBFloat16)},
            {"g", torch::tensor({2.0}, torch::kBFloat16)},
        };
        const QByteArray json = R"({"d":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"
                                R"("b":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},)"
                                R"("f":{"dtype":"BF16","shape":[1],"data_offsets":[16,18]},)"
                                R"("g":{"dtype":"BF16","shape":[1],"data_offsets":[18,20]},)"
                                R"("e":{"dtype":"F16","shape":[1],"data_offsets":[20,22]},)"
                                R"("a":{"dtype":"U8","shape":[3],"data_offsets":[22,25]},)"
                                R"("c":{"dtype":"BOOL","shape":[2],"data_offsets":[25,27]}})";
        const QByteArray padded = json + QByteArray((8 - json.size() % 8) % 8, ' ');
        QByteArray data;
        const qint64 seven = 7;
        const double oneAndHalf = 1.5;
        data.append(reinterpret_cast<const char*>(&seven), 8);
        data.append(reinterpret_cast<const char*>(&oneAndHalf), 8);
        data.append("\x80\x3f", 2).append("\x00\x40", 2).append("\x00\x3c", 2); // bf16 1, bf16 2, f16 1
        data.append("\x01\x02\x03\x01\x00", 5);
        const QByteArray bytes = toQByteArray(safetensors::serialize(tensors));
        QCOMPARE(bytes, lengthPrefix(padded.size()) + padded + data);
        QCOMPARE(padded.size() % 8, 0);
    }

    void acceptsValidEdgeCases_data()
    {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<int>("tensorCount");
        // The reference implementation's own examples.
        QTest::newRow("reference example")
            << fileWithHeader(R"({"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}})", QByteArray(16, '\0'))
            << 1;
        QTest::newRow("zero-dim shape")
            << fileWithHeader(R"({"test":{"dtype":"I32","shape":[],"data_offsets":[0,4]}})", QByteArray(4, '\0')) << 1;
        QTest::newRow("no tensors") << fileWithHeader("{}") << 0;
        QTest::newRow("whitespace padding") << fileWithHeader("{}  \n\t  ") << 0;
        QTest::newRow("entries out of offset order")
            << fileWithHeader(R"({"b":{"dtype":"U8","shape":[1],"data_offsets":[4,5]},)"
                              R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                              QByteArray(5, '\1'))
            << 2;
        QTest::newRow("empty tensors between and after")
            << fileWithHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                              R"("z":{"dtype":"F16","shape":[0,7],"data_offsets":[4,4]},)"
                              R"("b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},)"
                              R"("e":{"dtype":"I64","shape":[3,0],"data_offsets":[6,6]}})",
                              QByteArray(6, '\2'))
            << 4;
        QTest::newRow("empty tensor with a huge dimension")
            << fileWithHeader(R"({"t":{"dtype":"F64","shape":[0,9223372036854775807],"data_offsets":[0,0]}})") << 1;
        QTest::newRow("brackets inside names do not count as nesting")
            << fileWithHeader("{\"" + QByteArray(100, '[') + "\\\"{\":{" + kValidEntry + "}}", QByteArray(4, '\0'))
            << 1;
        QTest::newRow("metadata") << fileWithHeader(R"({"__metadata__":{"k":"v","":""}})") << 0;
    }

    void acceptsValidEdgeCases()
    {
        QFETCH(QByteArray, bytes);
        QFETCH(int, tensorCount);
        QCOMPARE(static_cast<int>(parseBytes(bytes).tensors.size()), tensorCount);
    }

    void rejectsMalformedInput_data()
    {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("problem");
        const QByteArray fourBytes(4, '\0');
        const auto entry = [](const QByteArray& fields) { return fileWithHeader("{\"t\":{" + fields + "}}", QByteArray(4, '\0')); };

        QTest::newRow("empty input") << QByteArray() << "too short for the 8-byte header length";
        QTest::newRow("truncated length") << QByteArray("\x02\x00\x00", 3) << "too short for the 8-byte";
        QTest::newRow("zero header length") << lengthPrefix(0) << "too short for a JSON object";
        QTest::newRow("one-byte header") << lengthPrefix(1) + "{" << "too short for a JSON object";
        QTest::newRow("huge length") << lengthPrefix(std::numeric_limits<quint64>::max()) + "{}" << "exceeds the limit";
        QTest::newRow("length over the limit")
            << lengthPrefix(safetensors::kMaxHeaderBytes + 1) + "{}" << "exceeds the limit";
        QTest::newRow("header longer than file") << lengthPrefix(100) + "{}" << "exceeds the 2 bytes that follow it";
        QTest::newRow("invalid JSON") << fileWithHeader(R"({"t":)") << "not valid UTF-8 JSON";
        QTest::newRow("invalid UTF-8") << fileWithHeader("{\"\xff\":1}") << "not valid UTF-8 JSON";
        QTest::newRow("trailing garbage") << fileWithHeader("{} x") << "not valid UTF-8 JSON";
        QTest::newRow("NUL padding") << fileWithHeader(QByteArray("{}\0\0\0\0\0\0", 8)) << "NUL byte at byte 2";
        QTest::newRow("garbage after NUL") << fileWithHeader(QByteArray("{}\0junk", 7)) << "NUL byte";
        QTest::newRow("NUL inside a name")
            << fileWithHeader(QByteArray("{\"a\0\":{", 7) + kValidEntry + "}}", QByteArray(4, '\0')) << "NUL byte";
        QTest::newRow("deep nesting")
            << fileWithHeader("{\"t\":" + QByteArray(40, '[') + QByteArray(40, ']') + "}") << "nests JSON deeper";
        QTest::newRow("deep unbalanced nesting") << fileWithHeader(QByteArray(200000, '[')) << "nests JSON deeper";
        QTest::newRow("array at top level") << fileWithHeader("[]") << "is a JSON array, not an object";
        QTest::newRow("string at top level") << fileWithHeader(R"("{}")") << "not an object";
        QTest::newRow("entry not an object") << fileWithHeader(R"({"t":[0,4]})", fourBytes) << "not an object";
        QTest::newRow("missing dtype") << entry(R"("shape":[1],"data_offsets":[0,4])") << "exactly the fields";
        QTest::newRow("missing shape") << entry(R"("dtype":"F32","data_offsets":[0,4])") << "exactly the fields";
        QTest::newRow("missing offsets") << entry(R"("dtype":"F32","shape":[1])") << "exactly the fields";
        QTest::newRow("extra field") << entry(kValidEntry + R"(,"x":1)") << "exactly the fields";
        QTest::newRow("misspelt field") << entry(R"("dtype":"F32","shape":[1],"data_offset":[0,4])") << "exactly the fields";
        QTest::newRow("dtype not a string") << entry(R"("dtype":4,"shape":[1],"data_offsets":[0,4])") << "dtype that is not a string";
        QTest::newRow("unknown dtype") << entry(R"("dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4])") << "unsupported dtype";
        QTest::newRow("lower-case dtype") << entry(R"("dtype":"f32","shape":[1],"data_offsets":[0,4])") << "unsupported dtype";
        QTest::newRow("shape not a list") << entry(R"("dtype":"F32","shape":1,"data_offsets":[0,4])") << "shape that is not a list";
        QTest::newRow("shape of strings") << entry(R"("dtype":"F32","shape":["1"],"data_offsets":[0,4])") << "shape that is not a list";
        QTest::newRow("negative dim") << entry(R"("dtype":"F32","shape":[-1],"data_offsets":[0,4])") << "shape that is not a list";
        QTest::newRow("fractional dim") << entry(R"("dtype":"F32","shape":[1.0],"data_offsets":[0,4])") << "shape that is not a list";
        QTest::newRow("exponent dim") << entry(R"("dtype":"F32","shape":[1e0],"data_offsets":[0,4])") << "shape that is not a list";
        QTest::newRow("dim beyond int64")
            << entry(R"("dtype":"F32","shape":[9223372036854775808,0],"data_offsets":[0,0])") << "too large for a tensor";
        QTest::newRow("dim beyond uint64")
            << entry(R"("dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4])") << "shape that is not a list";
        QTest::newRow("overflowing dims")
            << entry(R"("dtype":"U8","shape":[4294967296,4294967296,2],"data_offsets":[0,4])") << "overflows 64 bits";
        QTest::newRow("overflow by element size")
            << entry(R"("dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,4])") << "overflows 64 bits";
        QTest::newRow("overflow hidden by a zero dim")
            << entry(R"("dtype":"F32","shape":[4611686018427387904,4611686018427387904,0],"data_offsets":[0,0])")
            << "overflows 64 bits";
        QTest::newRow("offsets not a list") << entry(R"("dtype":"F32","shape":[1],"data_offsets":4)") << "not a pair";
        QTest::newRow("one offset") << entry(R"("dtype":"F32","shape":[1],"data_offsets":[0])") << "not a pair";
        QTest::newRow("three offsets") << entry(R"("dtype":"F32","shape":[1],"data_offsets":[0,4,4])") << "not a pair";
        QTest::newRow("negative offset") << entry(R"("dtype":"F32","shape":[1],"data_offsets":[-4,0])") << "not a pair";
        QTest::newRow("begin after end") << entry(R"("dtype":"F32","shape":[1],"data_offsets":[4,0])") << "end before they begin";
        QTest::newRow("end beyond data") << entry(R"("dtype":"F32","shape":[2],"data_offsets":[0,8])") << "beyond the 4-byte data buffer";
        QTest::newRow("end far beyond data")
            << entry(R"("dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,18446744073709551615])")
            << "beyond the 4-byte data buffer";
        QTest::newRow("size mismatch") << entry(R"("dtype":"F32","shape":[2],"data_offsets":[0,4])") << "need 8";
        QTest::newRow("overlap")
            << fileWithHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                              R"("b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
                              QByteArray(6, '\0'))
            << "overlap";
        QTest::newRow("same range twice")
            << fileWithHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                              R"("b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})",
                              fourBytes)
            << "overlap";
        QTest::newRow("hole between tensors")
            << fileWithHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                              R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                              QByteArray(12, '\0'))
            << "bytes 4 to 8 of the data buffer belong to no tensor";
        QTest::newRow("hole at the start")
            << fileWithHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", QByteArray(8, '\0'))
            << "bytes 0 to 4";
        QTest::newRow("trailing data") << fileWithHeader("{" + QByteArray(R"("a":{)") + kValidEntry + "}}", QByteArray(8, '\0'))
                                       << "bytes 4 to 8";
        QTest::newRow("data without tensors") << fileWithHeader("{}", fourBytes) << "bytes 0 to 4";
        QTest::newRow("metadata not an object") << fileWithHeader(R"({"__metadata__":"pt"})") << "not a JSON object";
        QTest::newRow("metadata null") << fileWithHeader(R"({"__metadata__":null})") << "not a JSON object";
        QTest::newRow("metadata number value") << fileWithHeader(R"({"__metadata__":{"epoch":3}})") << "not a string";
        QTest::newRow("metadata nested value") << fileWithHeader(R"({"__metadata__":{"a":{"b":"c"}}})") << "not a string";
    }

    void rejectsMalformedInput()
    {
        QFETCH(QByteArray, bytes);
        QFETCH(QString, problem);
        const auto expectFormatError = [&problem](const auto& call, const QString& source) {
            try {
                call();
                QFAIL("malformed input was accepted");
            } catch (const FormatError& error) {
                const QString message = QString::fromUtf8(error.what());
                QVERIFY2(message.startsWith(source) && message.contains(problem), qPrintable(message));
            }
        };
        expectFormatError([&] { parseBytes(bytes); }, QStringLiteral("test input: "));
        if (QTest::currentTestFailed())
            return;

        // Files go through the same validation, whole or header only.
        QTemporaryDir folder;
        const fs::path path = fs::path(folder.path().toStdString()) / "bad.safetensors";
        writeFile(path, bytes);
        const QString source = QString::fromStdString(path.string()) + QStringLiteral(": ");
        expectFormatError([&] { safetensors::load(path); }, source);
        expectFormatError([&] { safetensors::readHeader(path); }, source);
    }

    void missingOrFolderIsAnIoError()
    {
        QTemporaryDir folder;
        const fs::path missing = fs::path(folder.path().toStdString()) / "missing.safetensors";
        for (const fs::path& path : {missing, fs::path(folder.path().toStdString())}) {
            QVERIFY_THROWS_EXCEPTION(IoError, safetensors::load(path));
            QVERIFY_THROWS_EXCEPTION(IoError, safetensors::readHeader(path));
        }
        try {
            safetensors::load(missing);
        } catch (const IoError& error) {
            QVERIFY(QString::fromUtf8(error.what()).contains(QString::fromStdString(missing.string())));
        }
    }

    void refusesTensorsTheFormatCannotHold()
    {
        QVERIFY_THROWS_EXCEPTION(FormatError, safetensors::serialize({{"c", torch::zeros({2}, torch::kComplexFloat)}}));
        QVERIFY_THROWS_EXCEPTION(FormatError, safetensors::serialize({{"u", torch::Tensor()}}));
        QVERIFY_THROWS_EXCEPTION(FormatError, safetensors::serialize({{"__metadata__", torch::zeros({1})}}));
        QVERIFY_THROWS_EXCEPTION(FormatError, safetensors::serialize({{"bad\xff", torch::zeros({1})}}));
    }

    void saveReplacesAnExistingFile()
    {
        QTemporaryDir folder;
        const fs::path dir = folder.path().toStdString();
        const fs::path path = dir / "model.safetensors";
        safetensors::save(path, {{"old", torch::ones({3})}});
        safetensors::save(path, {{"new", torch::full({2}, 5.0)}}, {{"epoch", "2"}});
        const safetensors::File file = safetensors::load(path);
        QCOMPARE(file.tensors.size(), std::size_t(1));
        QVERIFY(torch::equal(file.tensors.at("new"), torch::full({2}, 5.0)));
        QCOMPARE(file.metadata.at("epoch"), std::string("2"));
        QCOMPARE(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), std::ptrdiff_t(1));
    }

    void failedSaveKeepsTheOldFile()
    {
        QTemporaryDir folder;
        const fs::path dir = folder.path().toStdString();
        const fs::path path = dir / "model.safetensors";
        safetensors::save(path, {{"old", torch::ones({3})}});
        const QByteArray before = readFile(path);

        // A dtype the format lacks fails before anything is written.
        QVERIFY_THROWS_EXCEPTION(FormatError, safetensors::save(path, {{"c", torch::zeros({1}, torch::kComplexDouble)}}));

        const fs::path missingFolder = dir / "missing" / "model.safetensors";
        try {
            safetensors::save(missingFolder, {{"new", torch::zeros({1})}});
            QFAIL("saving into a missing folder must fail");
        } catch (const IoError& error) {
            QVERIFY(QString::fromUtf8(error.what()).contains(QString::fromStdString(missingFolder.string())));
        }

        // Renaming a file over a folder fails after the temporary file was written.
        const fs::path occupied = dir / "occupied.safetensors";
        fs::create_directory(occupied);
        writeFile(occupied / "inside", "keep");
        QVERIFY_THROWS_EXCEPTION(IoError, safetensors::save(occupied, {{"new", torch::zeros({1})}}));
        QCOMPARE(readFile(occupied / "inside"), QByteArray("keep"));

        QCOMPARE(readFile(path), before);
        QCOMPARE(temporaryLeftovers(dir), QStringList());
    }

    void writeFailingHalfWayKeepsTheOldFile()
    {
        // A full disk, simulated with a file-size limit (which binds root too): the write of the
        // new file fails part-way, and the old file must survive untouched.
        QTemporaryDir folder;
        const fs::path dir = folder.path().toStdString();
        const fs::path path = dir / "model.safetensors";
        safetensors::save(path, {{"old", torch::ones({3})}});
        const QByteArray before = readFile(path);

        const auto previousHandler = std::signal(SIGXFSZ, SIG_IGN);
        rlimit previousLimit{};
        QCOMPARE(getrlimit(RLIMIT_FSIZE, &previousLimit), 0);
        rlimit small = previousLimit;
        small.rlim_cur = 4096;
        QCOMPARE(setrlimit(RLIMIT_FSIZE, &small), 0);
        bool threw = false;
        try {
            safetensors::save(path, {{"new", torch::zeros({100000})}});
        } catch (const IoError&) {
            threw = true;
        }
        setrlimit(RLIMIT_FSIZE, &previousLimit);
        std::signal(SIGXFSZ, previousHandler);

        QVERIFY(threw);
        QCOMPARE(readFile(path), before);
        QCOMPARE(temporaryLeftovers(dir), QStringList());
    }
};

QTEST_GUILESS_MAIN(TestSafetensors)
#include "tst_safetensors.moc"
