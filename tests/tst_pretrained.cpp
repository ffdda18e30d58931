// timm's pretrained tags in the registry: names, defaults, preprocessing, the repository's
// config.json read over them, and what a file of them weighs.
#include "core/errors.h"
#include "core/hub/pretrained_files.h"
#include "core/models/pretrained.h"
#include "core/models/weights.h"

#include <QTemporaryDir>
#include <QtTest>

using namespace vitlab;

class TestPretrained : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void everyStandardModelHasADefaultTag()
    {
        for (const auto& spec : ModelRegistry::instance().models()) {
            const bool standard = spec.input.size[0] == 224;
            const auto tags = pretrainedWeightsOf(spec.name);
            QVERIFY2(standard != tags.empty(), spec.name.c_str());
            for (const auto& weights : tags) {
                QCOMPARE(weights.repository(), "timm/" + spec.name + "." + weights.tag);
                QVERIFY(!weights.description.empty());
            }
        }
        const auto vit = findPretrainedWeights("vit_tiny_patch16_224");
        QCOMPARE(vit.tag, std::string("augreg_in21k_ft_in1k"));
        QCOMPARE(vit.input.mean[0], 0.5);
        QCOMPARE(vit.input.interpolation, std::string("bicubic"));
        const auto deit = findPretrainedWeights("deit_tiny_distilled_patch16_224");
        QCOMPARE(deit.repository(), std::string("timm/deit_tiny_distilled_patch16_224.fb_in1k"));
        QCOMPARE(deit.input.mean[0], 0.485);
        QCOMPARE(findPretrainedWeights("swin_small_patch4_window7_224").tag, std::string("ms_in22k_ft_in1k"));
        QCOMPARE(findPretrainedWeights("vit_base_patch16_224.mae").numClasses, std::int64_t{0});
    }

    void unknownNamesSayWhatThereIs()
    {
        try {
            findPretrainedWeights("vit_tiny_patch16_224.in22k");
            QFAIL("an unknown tag was accepted");
        } catch (const ConfigError& error) {
            QVERIFY2(QString(error.what()).contains("its tags: augreg_in21k_ft_in1k, augreg_in21k"), error.what());
        }
        QVERIFY_THROWS_EXCEPTION(ConfigError, findPretrainedWeights("vit_micro_patch4_28"));
        QVERIFY_THROWS_EXCEPTION(ConfigError, findPretrainedWeights("no_such_model"));
        // Hub weights named on a command line: the model must agree; an unlisted tag is let through.
        QCOMPARE(hub::pretrainedWeightsFor("hub", "tnt_s_patch16_224").name(), std::string("tnt_s_patch16_224.in1k"));
        QCOMPARE(hub::pretrainedWeightsFor("hub:tnt_s_patch16_224.future_tag", "").tag, std::string("future_tag"));
        QVERIFY_THROWS_EXCEPTION(ConfigError, hub::pretrainedWeightsFor("hub:tnt_s_patch16_224", "tnt_b_patch16_224"));
        QVERIFY_THROWS_EXCEPTION(ConfigError, hub::pretrainedWeightsFor("hub", ""));
        QVERIFY(hub::isHubWeights("hub:x") && hub::isHubWeights("hub") && !hub::isHubWeights("hub.safetensors"));
    }

    void hubConfigGivesThePreprocessing()
    {
        const auto config = nlohmann::json::parse(R"({
            "architecture": "vit_small_patch16_224", "num_classes": 0,
            "pretrained_cfg": {"tag": "dino", "input_size": [3, 224, 224], "interpolation": "bilinear",
                               "crop_pct": 0.875, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}})");
        const auto weights = readHubConfig(config, findPretrainedWeights("vit_small_patch16_224"));
        QCOMPARE(weights.input.cropPct, 0.875);
        QCOMPARE(weights.input.interpolation, std::string("bilinear"));
        QCOMPARE(weights.input.mean[2], 0.406);
        QCOMPARE(weights.numClasses, std::int64_t{0});
        const auto spec = withPreprocessingOf(ModelRegistry::instance().model("vit_small_patch16_224"), weights);
        QCOMPARE(spec.input.std[1], 0.224);
        QCOMPARE(spec.input.cropPct, 0.875);
        // The preprocessing survives a run folder's config.
        QCOMPARE(specFromConfig(specToConfig(spec)).input.interpolation, std::string("bilinear"));

        for (const char* bad : {R"({"architecture": "x"})", R"({"pretrained_cfg": {"mean": [0.5, 0.5]}})",
                                R"({"pretrained_cfg": {"interpolation": "lanczos"}})",
                                R"({"pretrained_cfg": {"crop_pct": 1.5}})", R"({"pretrained_cfg": {"input_size": 224}})"})
            QVERIFY_THROWS_EXCEPTION(FormatError, readHubConfig(nlohmann::json::parse(bad), {}));
    }

    void estimatedSizeIsTheFilesSize()
    {
        const auto weights = findPretrainedWeights("deit_tiny_patch16_224");
        QTemporaryDir dir;
        const auto file = std::filesystem::path(dir.path().toStdString()) / "deit.safetensors";
        saveWeights(*createModel(withNumClasses(ModelRegistry::instance().model(weights.model), 1000)), file);
        const auto actual = static_cast<double>(std::filesystem::file_size(file));
        QVERIFY2(std::abs(static_cast<double>(estimatedFileBytes(weights)) - actual) < 0.01 * actual,
                 qPrintable(QString("estimated %1, saved %2").arg(estimatedFileBytes(weights)).arg(actual)));
        // A file without a head weighs less.
        QVERIFY(estimatedFileBytes(findPretrainedWeights("vit_base_patch16_224.mae"))
                < estimatedFileBytes(findPretrainedWeights("vit_base_patch16_224")));
    }
};

QTEST_GUILESS_MAIN(TestPretrained)
#include "tst_pretrained.moc"
