#include "core/train/predictor.h"

#include "core/data/augment.h"
#include "core/data/image_folder.h"
#include "core/torch_compat.h"
#include "core/train/execution.h"
#include "core/train/run_model.h"

#include <algorithm>

namespace vitlab {

namespace {

constexpr std::size_t kBatchSize = 32;

} // namespace

std::vector<std::string> expandImagePaths(const std::vector<std::string>& paths)
{
    std::vector<std::string> images;
    for (const auto& path : paths) {
        std::error_code error;
        if (!std::filesystem::is_directory(path, error)) {
            images.push_back(path);
            continue;
        }
        std::vector<std::string> found;
        const auto options = std::filesystem::directory_options::skip_permission_denied;
        for (std::filesystem::recursive_directory_iterator it(path, options, error), end; !error && it != end;
             it.increment(error)) {
            if (it->is_regular_file(error) && hasImageExtension(it->path()))
                found.push_back(it->path().string());
        }
        std::sort(found.begin(), found.end());
        images.insert(images.end(), found.begin(), found.end());
    }
    return images;
}

struct Predictor::Impl {
    Impl(const std::filesystem::path& runDirectory, const torch::Device& onDevice)
        : run(loadRun(runDirectory, onDevice))
        , device(onDevice)
    {
    }
    LoadedRun run;
    torch::Device device;
    ComputePrecision precision;
    AugmentOptions view;
};

Predictor::Predictor(const std::filesystem::path& runDirectory, const std::string& device)
    : m_impl(std::make_unique<Impl>(runDirectory, resolveDevice(device)))
{
    m_impl->precision = inferencePrecision(m_impl->run.config.precision, m_impl->device);
    m_impl->view = evaluationView(m_impl->run.spec);
}

Predictor::~Predictor() = default;

const std::vector<std::string>& Predictor::classNames() const
{
    return m_impl->run.classNames;
}

std::string Predictor::modelName() const
{
    return m_impl->run.spec.name.empty() ? m_impl->run.config.model : m_impl->run.spec.name;
}

std::int64_t Predictor::imageSize() const
{
    return m_impl->view.outputSize;
}

std::int64_t Predictor::channels() const
{
    return m_impl->run.spec.input.channels;
}

std::vector<Prediction> Predictor::predict(const std::vector<std::string>& sources, int topK,
                                           const std::function<bool(std::size_t, std::size_t)>& progress)
{
    const auto imageChannels = channels();
    const auto size = m_impl->view.outputSize;
    const auto classes = static_cast<std::int64_t>(classNames().size());
    const auto k = std::clamp<std::int64_t>(topK, 1, classes);
    std::vector<Prediction> predictions(sources.size());
    c10::InferenceMode inference;
    for (std::size_t first = 0; first < sources.size(); first += kBatchSize) {
        const auto count = std::min(kBatchSize, sources.size() - first);
        auto images = torch::empty({static_cast<std::int64_t>(count), imageChannels, size, size});
        std::vector<std::size_t> readable;
        for (std::size_t i = 0; i < count; ++i) {
            auto& prediction = predictions[first + i];
            prediction.source = sources[first + i];
            try {
                images[static_cast<std::int64_t>(readable.size())].copy_(evaluationInput(prediction.source, m_impl->run.spec)[0]);
            } catch (const std::exception& error) {
                prediction.error = error.what();
                continue;
            }
            readable.push_back(first + i);
        }
        if (!readable.empty()) {
            torch::Tensor probabilities;
            {
                compat::AutocastGuard autocast(m_impl->device.type(), m_impl->precision.dtype,
                                               m_impl->precision.autocasts());
                const auto batch = images.narrow(0, 0, static_cast<std::int64_t>(readable.size())).to(m_impl->device);
                probabilities = m_impl->run.model->forward(batch).to(torch::kCPU, torch::kFloat32).softmax(-1);
            }
            const auto [values, indices] = probabilities.topk(k, -1);
            for (std::size_t row = 0; row < readable.size(); ++row) {
                auto& prediction = predictions[readable[row]];
                for (std::int64_t j = 0; j < k; ++j) {
                    const auto index = indices[static_cast<std::int64_t>(row)][j].item<std::int64_t>();
                    prediction.top.push_back({index, classNames()[static_cast<std::size_t>(index)],
                                              values[static_cast<std::int64_t>(row)][j].item<double>()});
                }
            }
        }
        if (progress && !progress(first + count, sources.size())) {
            predictions.resize(first + count);
            break;
        }
    }
    return predictions;
}

} // namespace vitlab
