#pragma once

// Classifying images with a trained run: what `vitlab-cli predict` and the app's Predict page
// use. Images go through exactly the preprocessing of the run's evaluation. Free of torch.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace vitlab {

struct ClassScore {
    std::int64_t index = 0;
    std::string name;
    double probability = 0.0;
};

struct Prediction {
    /// The image's path (or Dataset source).
    std::string source;
    /// The most probable classes, best first; empty when the image could not be read.
    std::vector<ClassScore> top;
    /// Why the image could not be classified, else empty.
    std::string error;
};

/// Image files named directly, and those found at any depth below the folders named, in order
/// (files of a folder sorted by path). Non-image files inside folders are ignored.
std::vector<std::string> expandImagePaths(const std::vector<std::string>& paths);

class Predictor {
public:
    /// Loads the run's best weights (else its last). `device` as in TrainConfig. Throws IoError or
    /// FormatError when the run cannot be loaded.
    explicit Predictor(const std::filesystem::path& runDirectory, const std::string& device = "auto");
    ~Predictor();
    Predictor(const Predictor&) = delete;
    Predictor& operator=(const Predictor&) = delete;

    const std::vector<std::string>& classNames() const;
    std::string modelName() const;
    std::int64_t imageSize() const;
    std::int64_t channels() const;

    /// Classifies image files or Dataset sources in batches; an unreadable image gets its error,
    /// never an exception. `progress(done, total)` returning false stops early.
    std::vector<Prediction> predict(const std::vector<std::string>& sources, int topK = 5,
                                    const std::function<bool(std::size_t, std::size_t)>& progress = {});

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

} // namespace vitlab
