#pragma once

// The IDX format of MNIST and Fashion-MNIST: a big-endian header (magic, dimensions) and raw
// uint8 data, usually gzipped.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace vitlab {

/// Images of one IDX file: `count` grey images of rows x cols, row-major, one byte per pixel.
struct IdxImages {
    std::int64_t count = 0;
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    std::vector<std::uint8_t> pixels;
};

/// Reads an idx3-ubyte file, gzipped or not. Throws IoError when it cannot be read and
/// FormatError for a wrong magic number, absurd dimensions or a file shorter than its header says.
IdxImages readIdxImages(const std::filesystem::path& path);
/// Reads an idx1-ubyte label file, gzipped or not; errors as readIdxImages.
std::vector<std::uint8_t> readIdxLabels(const std::filesystem::path& path);

/// A folder in the MNIST layout: train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
/// t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz].
struct IdxDataset {
    IdxImages trainImages;
    std::vector<std::uint8_t> trainLabels;
    IdxImages testImages;
    std::vector<std::uint8_t> testLabels;
    std::vector<std::string> classNames;
};

/// True when `folder` holds the four IDX files (gzipped or not).
bool isIdxFolder(const std::filesystem::path& folder);

/// Loads an IDX folder. Class names come from `classes.txt` (one per line) when present, from
/// Fashion-MNIST's names when `fashionMnist`, else are the label numbers. Throws IoError or
/// FormatError, naming the file, when anything is missing or inconsistent (label counts that do
/// not match image counts, labels outside the class names).
IdxDataset loadIdxFolder(const std::filesystem::path& folder, bool fashionMnist = false);

/// Fashion-MNIST's ten class names, in label order.
const std::vector<std::string>& fashionMnistClassNames();

} // namespace vitlab
