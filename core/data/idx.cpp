#include "core/data/idx.h"

#include "core/errors.h"

#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <memory>

namespace vitlab {

namespace {

constexpr std::uint32_t kImagesMagic = 0x00000803; // unsigned bytes, three dimensions
constexpr std::uint32_t kLabelsMagic = 0x00000801; // unsigned bytes, one dimension
// Far above any real IDX set; refuses headers that would ask for absurd allocations.
constexpr std::int64_t kMaxElements = std::int64_t{1} << 34;

/// The whole file, decompressed when gzipped (zlib reads plain files unchanged).
class GzipReader {
public:
    explicit GzipReader(const std::filesystem::path& path)
        : m_path(path)
        , m_file(gzopen(path.c_str(), "rb"), &gzclose)
    {
        if (!m_file)
            throw IoError("cannot open " + path.string());
    }

    void read(std::uint8_t* destination, std::size_t bytes, const char* what)
    {
        while (bytes > 0) {
            const auto chunk = static_cast<unsigned>(std::min<std::size_t>(bytes, 1u << 30));
            const int got = gzread(m_file.get(), destination, chunk);
            if (got < 0)
                throw FormatError(m_path.string() + " is corrupt (" + what + ")");
            if (got == 0)
                throw FormatError(m_path.string() + " ends before its " + what);
            destination += got;
            bytes -= static_cast<std::size_t>(got);
        }
    }

    /// `bytes` bytes into `out`, which grows as the data arrives: a header that declares more
    /// than the file holds fails at the file's end instead of allocating all it declares.
    void readInto(std::vector<std::uint8_t>& out, std::size_t bytes, const char* what)
    {
        constexpr std::size_t kStep = std::size_t{1} << 20; // the vector still grows geometrically
        out.clear();
        while (out.size() < bytes) {
            const auto start = out.size();
            out.resize(start + std::min(kStep, bytes - start));
            read(out.data() + start, out.size() - start, what);
        }
    }

    std::uint32_t readBigEndian32(const char* what)
    {
        std::uint8_t bytes[4];
        read(bytes, 4, what);
        return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8)
            | std::uint32_t{bytes[3]};
    }

private:
    std::filesystem::path m_path;
    std::unique_ptr<std::remove_pointer_t<gzFile>, int (*)(gzFile)> m_file;
};

void checkMagic(std::uint32_t magic, std::uint32_t expected, const std::filesystem::path& path, const char* kind)
{
    if (magic != expected)
        throw FormatError(path.string() + " is not an IDX " + kind + " file (magic number 0x" + [&] {
            char text[9];
            std::snprintf(text, sizeof text, "%08x", magic);
            return std::string(text);
        }() + ")");
}

std::filesystem::path findIdxFile(const std::filesystem::path& folder, const std::string& stem)
{
    for (const auto& name : {stem + ".gz", stem}) {
        std::error_code error;
        if (std::filesystem::is_regular_file(folder / name, error))
            return folder / name;
    }
    throw IoError("the IDX folder " + folder.string() + " has no " + stem + "[.gz]");
}

std::vector<std::string> readClassNames(const std::filesystem::path& file)
{
    std::ifstream in(file);
    if (!in)
        throw IoError("cannot read " + file.string());
    std::vector<std::string> names;
    for (std::string line; std::getline(in, line);) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
            line.pop_back();
        if (!line.empty())
            names.push_back(line);
    }
    return names;
}

} // namespace

IdxImages readIdxImages(const std::filesystem::path& path)
{
    GzipReader reader(path);
    checkMagic(reader.readBigEndian32("header"), kImagesMagic, path, "image");
    IdxImages images;
    images.count = reader.readBigEndian32("header");
    images.rows = reader.readBigEndian32("header");
    images.cols = reader.readBigEndian32("header");
    if (images.rows < 1 || images.cols < 1 || images.rows > 65536 || images.cols > 65536
        || images.count > kMaxElements / (images.rows * images.cols))
        throw FormatError(path.string() + " declares impossible image dimensions");
    reader.readInto(images.pixels, static_cast<std::size_t>(images.count * images.rows * images.cols), "pixels");
    return images;
}

std::vector<std::uint8_t> readIdxLabels(const std::filesystem::path& path)
{
    GzipReader reader(path);
    checkMagic(reader.readBigEndian32("header"), kLabelsMagic, path, "label");
    const std::int64_t count = reader.readBigEndian32("header");
    if (count > kMaxElements)
        throw FormatError(path.string() + " declares an impossible label count");
    std::vector<std::uint8_t> labels;
    reader.readInto(labels, static_cast<std::size_t>(count), "labels");
    return labels;
}

bool isIdxFolder(const std::filesystem::path& folder)
{
    try {
        for (const char* stem :
             {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"})
            findIdxFile(folder, stem);
        return true;
    } catch (const IoError&) {
        return false;
    }
}

IdxDataset loadIdxFolder(const std::filesystem::path& folder, bool fashionMnist)
{
    IdxDataset data;
    const auto trainImages = findIdxFile(folder, "train-images-idx3-ubyte");
    const auto testImages = findIdxFile(folder, "t10k-images-idx3-ubyte");
    data.trainImages = readIdxImages(trainImages);
    data.trainLabels = readIdxLabels(findIdxFile(folder, "train-labels-idx1-ubyte"));
    data.testImages = readIdxImages(testImages);
    data.testLabels = readIdxLabels(findIdxFile(folder, "t10k-labels-idx1-ubyte"));
    if (static_cast<std::int64_t>(data.trainLabels.size()) != data.trainImages.count)
        throw FormatError(folder.string() + ": " + std::to_string(data.trainLabels.size()) + " training labels for "
                          + std::to_string(data.trainImages.count) + " images");
    if (static_cast<std::int64_t>(data.testLabels.size()) != data.testImages.count)
        throw FormatError(folder.string() + ": " + std::to_string(data.testLabels.size()) + " test labels for "
                          + std::to_string(data.testImages.count) + " images");
    if (data.trainImages.rows != data.testImages.rows || data.trainImages.cols != data.testImages.cols)
        throw FormatError(folder.string() + ": training and test images differ in size");

    const auto maxLabel = [](const std::vector<std::uint8_t>& labels) {
        return labels.empty() ? 0 : *std::max_element(labels.begin(), labels.end());
    };
    const int classes = std::max(maxLabel(data.trainLabels), maxLabel(data.testLabels)) + 1;
    std::error_code error;
    if (std::filesystem::is_regular_file(folder / "classes.txt", error)) {
        data.classNames = readClassNames(folder / "classes.txt");
    } else if (fashionMnist) {
        data.classNames = fashionMnistClassNames();
    } else {
        for (int label = 0; label < classes; ++label)
            data.classNames.push_back(std::to_string(label));
    }
    if (static_cast<int>(data.classNames.size()) < classes)
        throw FormatError(folder.string() + ": labels go up to " + std::to_string(classes - 1) + " but only "
                          + std::to_string(data.classNames.size()) + " class names are given");
    return data;
}

const std::vector<std::string>& fashionMnistClassNames()
{
    static const std::vector<std::string> names{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return names;
}

} // namespace vitlab
