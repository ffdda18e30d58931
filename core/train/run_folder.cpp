#include "core/train/run_folder.h"

#include "core/errors.h"
#include "core/io/atomic_file.h"
#include "core/io/text_file.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>

namespace vitlab {

namespace fs = std::filesystem;

std::string outcomeName(RunOutcome outcome)
{
    switch (outcome) {
    case RunOutcome::Finished:
        return "finished";
    case RunOutcome::Stopped:
        return "stopped";
    case RunOutcome::TimeLimit:
        return "time_limit";
    case RunOutcome::Diverged:
        return "diverged";
    case RunOutcome::OutOfMemory:
        return "out_of_memory";
    case RunOutcome::Failed:
        break;
    }
    return "failed";
}

namespace {

constexpr const char* kMetricsHeader =
    "kind,epoch,step,seconds,lr,loss,images_per_s,train_acc,val_loss,val_top1,val_top5,skipped_steps,loss_scale";
// Runs from before float16 training lack the last two columns.
constexpr const char* kMetricsHeaderWithoutScaling =
    "kind,epoch,step,seconds,lr,loss,images_per_s,train_acc,val_loss,val_top1,val_top5";

std::string formatNumber(double value)
{
    if (std::isnan(value))
        return "";
    std::ostringstream out;
    out << std::setprecision(7) << value;
    return out.str();
}

double parseNumber(const std::string& cell)
{
    if (cell.empty())
        return std::numeric_limits<double>::quiet_NaN();
    std::size_t used = 0;
    const double value = std::stod(cell, &used);
    if (used != cell.size())
        throw std::invalid_argument(cell);
    return value;
}

bool processAlive(int pid)
{
    return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

std::string timestamp()
{
    const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm local{};
    localtime_r(&now, &local);
    std::ostringstream out;
    out << std::put_time(&local, "%Y%m%d-%H%M%S");
    return out.str();
}

} // namespace

RunFolder::RunFolder(fs::path directory)
    : m_directory(std::move(directory))
{
}

RunFolder RunFolder::create(const fs::path& runsDirectory, const std::string& name, const std::string& model)
{
    std::error_code error;
    fs::create_directories(runsDirectory, error);
    if (error)
        throw IoError("cannot create the runs folder " + runsDirectory.string() + ": " + error.message());
    std::string base = name;
    if (base.empty()) {
        std::string modelPart = fs::path(model).stem().string();
        base = timestamp() + "-" + (modelPart.empty() ? "run" : modelPart);
    }
    if (base.find('/') != std::string::npos || base == "." || base == "..")
        throw ConfigError("a run name cannot contain '/' or be \".\" or \"..\": \"" + base + "\"");
    for (int attempt = 0; attempt < 1000; ++attempt) {
        const auto candidate = runsDirectory / (attempt == 0 ? base : base + "-" + std::to_string(attempt + 1));
        // create_directory is atomic: two runs started at once cannot share a folder.
        if (fs::create_directory(candidate, error))
            return RunFolder(candidate);
        if (error)
            throw IoError("cannot create the run folder " + candidate.string() + ": " + error.message());
    }
    throw IoError("cannot find a free run folder name for " + base + " in " + runsDirectory.string());
}

RunFolder RunFolder::open(const fs::path& directory)
{
    RunFolder folder(directory);
    std::error_code error;
    if (!fs::is_directory(directory, error))
        throw IoError("the run folder " + directory.string() + " does not exist");
    if (!fs::exists(folder.configPath(), error))
        throw IoError(directory.string() + " is not a ViTLab run folder (it has no config.json)");
    return folder;
}

fs::path RunFolder::weightsForInference() const
{
    std::error_code error;
    if (fs::exists(bestWeightsPath(), error))
        return bestWeightsPath();
    if (fs::exists(lastWeightsPath(), error))
        return lastWeightsPath();
    return {};
}

void RunFolder::writeConfig(const nlohmann::json& config) const
{
    writeFileAtomically(configPath(), config.dump(2) + "\n");
}

nlohmann::json RunFolder::readConfig() const
{
    return readJsonFile(configPath());
}

void RunFolder::writeClasses(const std::vector<std::string>& names) const
{
    std::string text;
    for (const auto& name : names)
        text += name + "\n";
    writeFileAtomically(classesPath(), text);
}

std::vector<std::string> RunFolder::readClasses() const
{
    std::istringstream in(readTextFile(classesPath()));
    std::vector<std::string> names;
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (!line.empty())
            names.push_back(line);
    }
    return names;
}

void RunFolder::writeMetrics(const std::vector<MetricsRow>& rows) const
{
    std::string text = std::string(kMetricsHeader) + "\n";
    for (const auto& row : rows) {
        text += row.kind + "," + std::to_string(row.epoch) + "," + std::to_string(row.step) + ","
            + formatNumber(row.seconds) + "," + formatNumber(row.learningRate) + "," + formatNumber(row.loss) + ","
            + formatNumber(row.imagesPerSecond) + "," + formatNumber(row.trainAccuracy) + ","
            + formatNumber(row.validationLoss) + "," + formatNumber(row.validationTop1) + ","
            + formatNumber(row.validationTop5) + "," + std::to_string(row.skippedSteps) + ","
            + formatNumber(row.lossScale) + "\n";
    }
    writeFileAtomically(metricsPath(), text);
}

std::vector<MetricsRow> RunFolder::readMetrics() const
{
    std::error_code error;
    if (!fs::exists(metricsPath(), error))
        return {};
    std::istringstream in(readTextFile(metricsPath()));
    std::string line;
    std::getline(in, line);
    const bool withScaling = line == kMetricsHeader;
    if (!withScaling && line != kMetricsHeaderWithoutScaling)
        throw FormatError(metricsPath().string() + " does not start with ViTLab's metrics header");
    const std::size_t columns = withScaling ? 13 : 11;
    std::vector<MetricsRow> rows;
    for (int number = 2; std::getline(in, line); ++number) {
        if (line.empty())
            continue;
        std::vector<std::string> cells;
        std::istringstream fields(line);
        for (std::string cell; std::getline(fields, cell, ',');)
            cells.push_back(cell);
        if (!line.empty() && line.back() == ',')
            cells.emplace_back();
        try {
            if (cells.size() != columns || (cells[0] != "step" && cells[0] != "epoch"))
                throw std::invalid_argument(line);
            MetricsRow row;
            row.kind = cells[0];
            row.epoch = std::stoi(cells[1]);
            row.step = std::stoll(cells[2]);
            row.seconds = parseNumber(cells[3]);
            row.learningRate = parseNumber(cells[4]);
            row.loss = parseNumber(cells[5]);
            row.imagesPerSecond = parseNumber(cells[6]);
            row.trainAccuracy = parseNumber(cells[7]);
            row.validationLoss = parseNumber(cells[8]);
            row.validationTop1 = parseNumber(cells[9]);
            row.validationTop5 = parseNumber(cells[10]);
            if (withScaling) {
                row.skippedSteps = std::stoll(cells[11]);
                row.lossScale = parseNumber(cells[12]);
            }
            rows.push_back(row);
        } catch (const std::exception&) {
            throw FormatError(metricsPath().string() + " line " + std::to_string(number) + " is malformed");
        }
    }
    return rows;
}

void RunFolder::writeStatus(const RunStatus& status) const
{
    const nlohmann::json json = {{"state", status.state}, {"message", status.message}, {"epoch", status.epoch},
                                 {"step", status.step},   {"epochs", status.epochs},   {"best_top1", status.bestTop1},
                                 {"pid", status.pid}};
    writeFileAtomically(statusPath(), json.dump(2) + "\n");
}

RunStatus RunFolder::readStatus() const
{
    RunStatus status;
    std::error_code error;
    if (!fs::exists(statusPath(), error)) {
        status.state = "new";
        return status;
    }
    const auto json = readJsonFile(statusPath());
    status.state = json.value("state", std::string("unknown"));
    status.message = json.value("message", std::string());
    status.epoch = json.value("epoch", 0);
    status.step = json.value("step", std::int64_t{0});
    status.epochs = json.value("epochs", 0);
    status.bestTop1 = json.value("best_top1", 0.0);
    status.pid = json.value("pid", 0);
    if (status.state == "running" && status.pid != ::getpid() && !processAlive(status.pid))
        status.state = "interrupted";
    return status;
}

void RunFolder::removeStaleTemporaryFiles() const
{
    std::error_code error;
    for (fs::directory_iterator it(m_directory, error), end; !error && it != end; it.increment(error)) {
        if (it->path().filename().string().find(".tmp-") != std::string::npos)
            fs::remove(it->path(), error);
    }
}

void RunFolder::writeEvaluation(const EvaluationResult& result) const
{
    writeFileAtomically(evaluationPath(), result.toJson().dump() + "\n");
}

std::optional<EvaluationResult> RunFolder::readEvaluation() const
{
    std::error_code error;
    if (!fs::exists(evaluationPath(), error))
        return std::nullopt;
    return EvaluationResult::fromJson(readJsonFile(evaluationPath()));
}

std::vector<RunSummary> listRuns(const fs::path& runsDirectory)
{
    std::vector<RunSummary> runs;
    std::error_code error;
    for (fs::directory_iterator it(runsDirectory, error), end; !error && it != end; it.increment(error)) {
        if (!it->is_directory(error) || !fs::exists(it->path() / "config.json", error))
            continue;
        try {
            const RunFolder folder(it->path());
            RunSummary summary;
            summary.directory = it->path();
            summary.name = folder.name();
            const auto config = folder.readConfig();
            const auto train = config.value("train", nlohmann::json::object());
            summary.model = train.value("model", std::string());
            summary.data = train.value("data", std::string());
            summary.status = folder.readStatus();
            const auto changed = fs::last_write_time(fs::exists(folder.statusPath(), error) ? folder.statusPath()
                                                                                             : folder.configPath());
            // C++17 has no clock_cast: carry the file time over by its distance from now.
            const auto modified = std::chrono::system_clock::now()
                + std::chrono::duration_cast<std::chrono::system_clock::duration>(changed
                                                                                   - fs::file_time_type::clock::now());
            summary.modified
                = std::chrono::duration_cast<std::chrono::seconds>(modified.time_since_epoch()).count();
            runs.push_back(std::move(summary));
        } catch (const std::exception&) {
            // A half-written or foreign folder is not a run to list.
        }
    }
    std::sort(runs.begin(), runs.end(), [](const RunSummary& a, const RunSummary& b) {
        return a.modified != b.modified ? a.modified > b.modified : a.name > b.name;
    });
    return runs;
}

} // namespace vitlab
