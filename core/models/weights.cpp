#include "core/models/weights.h"

#include "core/errors.h"

#include <set>
#include <sstream>

namespace vitlab {

namespace {

std::string shapeText(c10::IntArrayRef sizes)
{
    std::string text = "(";
    for (std::size_t i = 0; i < sizes.size(); ++i)
        text += (i ? ", " : "") + std::to_string(sizes[i]);
    return text + ")";
}

void appendList(std::ostringstream& out, const char* title, const std::vector<std::string>& items)
{
    if (items.empty())
        return;
    out << " " << items.size() << " " << title << ": ";
    const std::size_t shown = std::min<std::size_t>(items.size(), 6);
    for (std::size_t i = 0; i < shown; ++i)
        out << (i ? ", " : "") << items[i];
    if (shown < items.size())
        out << " and " << (items.size() - shown) << " more";
    out << ".";
}

const char* const kHeadWeightKeys[] = {"head.weight", "head.fc.weight"};

} // namespace

std::string WeightsReport::summary() const
{
    std::ostringstream out;
    out << loaded << " tensors loaded.";
    appendList(out, "missing from the file", missing);
    appendList(out, "unexpected in the file", unexpected);
    appendList(out, "with other shapes", mismatched);
    for (const auto& note : notes)
        out << " " << note << ".";
    return out.str();
}

WeightsReport loadStateDict(ClassifierImpl& model, StateDict stateDict, const WeightsLoadOptions& options)
{
    WeightsReport report;
    model.adaptStateDict(stateDict, report.notes);
    const StateDict target = stateDictOf(model);

    // A head trained for another class count is replaced by the model's fresh one, and so is the
    // head a file does not have (self-supervised weights such as DINO's and MAE's).
    std::set<std::string> freshHeadKeys;
    bool headless = false;
    for (const auto& [key, tensor] : target) {
        const auto found = stateDict.find(key);
        if (found == stateDict.end() && options.allowFreshHead && key.rfind("head", 0) == 0
            && model.parameterGroup(key).role == ParameterGroup::Role::Head) {
            freshHeadKeys.insert(key);
            headless = true;
            continue;
        }
        if (found == stateDict.end() || found->second.sizes() == tensor.sizes())
            continue;
        if (options.allowFreshHead && model.parameterGroup(key).role == ParameterGroup::Role::Head
            && found->second.dim() >= 1 && tensor.dim() >= 1 && found->second.dim() == tensor.dim()
            && found->second.size(0) != tensor.size(0) && tensor.size(0) == model.numClasses()) {
            freshHeadKeys.insert(key);
        }
    }
    if (!freshHeadKeys.empty()) {
        report.freshHead = true;
        report.notes.push_back("new classifier head for " + std::to_string(model.numClasses()) + " classes ("
                               + (headless ? "the file has no head" : "the file's head has another class count")
                               + ")");
    }

    for (const auto& [key, tensor] : target) {
        const auto found = stateDict.find(key);
        if (found == stateDict.end()) {
            if (freshHeadKeys.count(key) == 0)
                report.missing.push_back(key);
        } else if (found->second.sizes() != tensor.sizes() && freshHeadKeys.count(key) == 0)
            report.mismatched.push_back(key + ": file " + shapeText(found->second.sizes()) + " vs model "
                                        + shapeText(tensor.sizes()));
    }
    for (const auto& [key, tensor] : stateDict) {
        if (target.count(key) == 0)
            report.unexpected.push_back(key);
    }
    if (options.strict && !report.clean())
        throw FormatError("the weights do not fit this model:" + report.summary().substr(report.summary().find('.') + 1));

    std::set<std::string> converted;
    torch::NoGradGuard noGrad;
    for (const auto& [key, destination] : target) {
        const auto found = stateDict.find(key);
        if (found == stateDict.end() || freshHeadKeys.count(key) || found->second.sizes() != destination.sizes())
            continue;
        const auto& source = found->second;
        if (source.scalar_type() != destination.scalar_type())
            converted.insert(std::string(c10::toString(source.scalar_type())));
        destination.copy_(source.to(destination.device(), destination.scalar_type()));
        ++report.loaded;
    }
    for (const auto& dtype : converted)
        report.notes.push_back(dtype + " tensors converted to the model's precision");
    return report;
}

WeightsReport loadWeights(ClassifierImpl& model, const std::filesystem::path& file, const WeightsLoadOptions& options)
{
    auto contents = safetensors::load(file);
    try {
        return loadStateDict(model, std::move(contents.tensors), options);
    } catch (const FormatError& error) {
        throw FormatError(file.string() + ": " + error.what());
    }
}

std::int64_t numClassesInWeights(const std::filesystem::path& file)
{
    const auto header = safetensors::readHeader(file);
    for (const char* key : kHeadWeightKeys) {
        if (const auto it = header.find(key); it != header.end() && it->second.shape.size() == 2)
            return it->second.shape[0];
    }
    return 0;
}

Classifier createModelWithWeights(ModelSpec spec, const std::filesystem::path& file, const WeightsLoadOptions& options,
                                  WeightsReport* report)
{
    if (!spec.args.contains("num_classes"))
        spec = withNumClasses(std::move(spec), numClassesInWeights(file));
    auto model = createModel(spec);
    auto result = loadWeights(*model, file, options);
    if (report)
        *report = std::move(result);
    return model;
}

void saveWeights(const ClassifierImpl& model, const std::filesystem::path& file, const safetensors::Metadata& metadata)
{
    safetensors::TensorMap tensors;
    for (const auto& [key, tensor] : stateDictOf(model))
        tensors[key] = tensor.detach();
    safetensors::save(file, tensors, metadata);
}

FreezeSpec parseFreezeSpec(const std::string& text)
{
    if (text.empty() || text == "none")
        return {};
    if (text == "head")
        return {FreezeSpec::Mode::AllButHead, 0};
    try {
        std::size_t used = 0;
        const int units = std::stoi(text, &used);
        if (used == text.size() && units >= 0)
            return {FreezeSpec::Mode::FirstUnits, units};
    } catch (const std::exception&) {
    }
    throw ConfigError("freeze must be \"none\", \"head\" (train only the head) or a number of blocks, not \"" + text
                      + "\"");
}

std::int64_t applyFreeze(ClassifierImpl& model, const FreezeSpec& spec)
{
    if (spec.mode == FreezeSpec::Mode::FirstUnits && spec.units > model.numUnits())
        throw ConfigError("cannot freeze " + std::to_string(spec.units) + " blocks: the model has "
                          + std::to_string(model.numUnits()));
    std::int64_t frozen = 0;
    for (auto& item : model.named_parameters(/*recurse=*/true)) {
        const auto group = model.parameterGroup(item.key());
        bool freeze = false;
        if (spec.mode == FreezeSpec::Mode::AllButHead)
            freeze = group.role != ParameterGroup::Role::Head;
        else if (spec.mode == FreezeSpec::Mode::FirstUnits)
            freeze = group.role == ParameterGroup::Role::Stem
                || (group.role == ParameterGroup::Role::Unit && group.unit < spec.units);
        item.value().set_requires_grad(!freeze);
        if (freeze)
            frozen += item.value().numel();
    }
    return frozen;
}

} // namespace vitlab
