// Equality with timm: every fixture in shared/fixtures/timm loads unchanged and computes timm's
// logits (and attention and rollout where the fixture has them); what we save has timm's keys.
#include "core/attention/rollout.h"
#include "core/io/safetensors.h"
#include "core/models/registry.h"
#include "core/models/vit.h"
#include "core/models/weights.h"
#include "core/torch_compat.h"
#include "test_support.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <fstream>

using namespace vitlab;

namespace {

nlohmann::json fixtureIndex()
{
    std::ifstream in(test::timmFixturesDir() / "index.json");
    if (!in)
        return nlohmann::json::object();
    return nlohmann::json::parse(in);
}

struct Fixture {
    ModelSpec spec;
    Classifier model;
    safetensors::TensorMap io;
};

Fixture loadFixture(const QString& name)
{
    const auto entry = fixtureIndex()[name.toStdString()];
    Fixture fixture;
    fixture.spec = specFromConfig(entry["config"]);
    fixture.model = createModel(fixture.spec);
    const auto report = loadWeights(*fixture.model, test::timmFixturesDir() / (name.toStdString() + ".safetensors"));
    if (!report.clean())
        throw std::runtime_error(report.summary());
    fixture.model->eval();
    fixture.io = safetensors::load(test::timmFixturesDir() / (name.toStdString() + ".io.safetensors")).tensors;
    return fixture;
}

/// bf16 matrix products (linear layers, convolutions, attention's two batched products) on the
/// longest path from the image to a logit, read off a fixture's config: a transformer block has
/// six (qkv, q k^T, attention times v, proj, fc1, fc2), a TNT block thirteen (six inner, the
/// pixels' projection into the patch, six outer), a ResNet bottleneck three on its main path.
int productsOnLongestPath(const nlohmann::json& config)
{
    const auto family = config.at("family").get<std::string>();
    const auto sum = [&](const char* key) {
        int total = 0;
        for (const auto& value : config.at(key))
            total += value.get<int>();
        return total;
    };
    const int embedAndHead = 2;
    if (family == "swin")
        return embedAndHead + 6 * sum("depths") + static_cast<int>(config.at("depths").size()) - 1;
    if (family == "tnt")
        return embedAndHead + 1 + 13 * config.at("depth").get<int>(); // + the pixels' first projection
    const int blocks = 6 * config.at("depth").get<int>();
    if (family == "hybrid")
        return embedAndHead + 3 * sum("backbone_layers") + 1 + blocks; // stem, bottlenecks, 1x1 projection
    return embedAndHead + blocks;
}

} // namespace

class TestTimmFixtures : public QObject {
    Q_OBJECT

private:
    /// A row per fixture; with `withAttention`, only those whose index lists attention maps.
    void fixtureRows(bool withAttention = false)
    {
        QTest::addColumn<QString>("name");
        const auto index = fixtureIndex();
        QVERIFY2(!index.empty(), "shared/fixtures/timm/index.json is missing: set VITLAB_FIXTURES_DIR");
        for (const auto& [name, entry] : index.items()) {
            const auto& extra = entry.value("extra_outputs", nlohmann::json::array());
            if (!withAttention || std::find(extra.begin(), extra.end(), "attn.0") != extra.end())
                QTest::newRow(name.c_str()) << QString::fromStdString(name);
        }
    }

private Q_SLOTS:
    void initTestCase() { torch::manual_seed(0); }

    // Both attention paths: the fused kernel (at::scaled_dot_product_attention on LibTorch 2.x;
    // 1.13 has none and runs the same explicit code) and the explicit softmax that keeps the
    // map, which inspection takes.
    void logitsMatchTimm_data()
    {
        QTest::addColumn<QString>("name");
        QTest::addColumn<bool>("capturing");
        const auto index = fixtureIndex(); // items() refers into it: it must outlive the loop
        for (const auto& [name, entry] : index.items()) {
            QTest::newRow((name + (compat::kHasFusedAttention ? "/fused" : "/uncaptured")).c_str())
                << QString::fromStdString(name) << false;
            QTest::newRow((name + "/capturing").c_str()) << QString::fromStdString(name) << true;
        }
    }
    void logitsMatchTimm()
    {
        QFETCH(QString, name);
        QFETCH(bool, capturing);
        auto fixture = loadFixture(name);
        fixture.model->setAttentionCapture(capturing);
        torch::NoGradGuard noGrad;
        const auto logits = fixture.model->forward(fixture.io.at("input"));
        const auto& expected = fixture.io.at("logits");
        QCOMPARE(test::shapeString(logits), test::shapeString(expected));
        const double tolerance = 1e-4 * std::max(1.0, expected.abs().max().item<double>());
        const double difference = test::maxAbsDifference(logits, expected);
        QVERIFY2(difference <= tolerance, qPrintable(QStringLiteral("max |diff| %1 > %2").arg(difference).arg(tolerance)));
    }

    // bf16 inference (autocast, and the fused kernels where they apply) computes the float32
    // function to bf16's precision, checked against our own float32 logits. Every family runs on
    // both of LibTorch's CPU paths for bf16 products: oneDNN's (native on AVX-512 BF16 and AMX)
    // and ATen's own, which CPUs without AVX-512 take (Zen 2, older Xeons); on one and two threads.
    void bf16LogitsStayNearFloat32_data()
    {
        QTest::addColumn<QString>("name");
        QTest::addColumn<bool>("onednn");
        QTest::addColumn<int>("threads");
        const auto index = fixtureIndex();
        for (const auto& [name, entry] : index.items()) {
            for (const bool onednn : {true, false}) {
                for (const int threads : {1, 2}) {
                    const auto row = name + (onednn ? "/onednn/" : "/aten/") + std::to_string(threads);
                    QTest::newRow(row.c_str()) << QString::fromStdString(name) << onednn << threads;
                }
            }
        }
    }
    void bf16LogitsStayNearFloat32()
    {
        QFETCH(QString, name);
        QFETCH(bool, onednn);
        QFETCH(int, threads);
        const test::ThreadsGuard threadsGuard(threads);
        const test::OneDnnGuard onednnGuard(onednn);
        auto fixture = loadFixture(name);
        const auto& input = fixture.io.at("input");
        c10::InferenceMode inference;
        const auto float32 = fixture.model->forward(input);
        torch::Tensor bf16;
        {
            compat::AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16);
            bf16 = fixture.model->forward(input);
        }
        QCOMPARE(bf16.scalar_type(), torch::kBFloat16);
        // Each bf16 product rounds its two operands and its result to 8 significant bits, each a
        // relative error of RMS u / sqrt(3) (u = 2^-8), and sums in float32. Norms and softmax
        // (float32) keep the scale, so 3P independent roundings on the longest path add up as a
        // random walk to an RMS of u sqrt(P) of the logits' scale, max(1, max |logit|); the
        // largest of a fixture's ten logit errors stays within twice that (a normal's 95th
        // percentile is 1.96 sigma). A product that sums in bf16 is caught where it happens, by
        // tst_fused_bf16's bound on single products.
        const int products = productsOnLongestPath(fixtureIndex()[name.toStdString()]["config"]);
        const double scale = std::max(1.0, float32.abs().max().item<double>());
        const double bound = 2.0 * std::sqrt(static_cast<double>(products)) / 256.0 * scale;
        const double difference = test::maxAbsDifference(bf16, float32);
        QVERIFY2(difference <= bound, qPrintable(QStringLiteral("max |diff| %1 > %2 (%3 products, max |logit| %4)")
                                                     .arg(difference)
                                                     .arg(bound)
                                                     .arg(products)
                                                     .arg(scale)));
    }

    void attentionMatchesTimm_data() { fixtureRows(/*withAttention=*/true); }
    void attentionMatchesTimm()
    {
        QFETCH(QString, name);
        auto fixture = loadFixture(name);
        QVERIFY(fixture.io.count("attn.0"));
        fixture.model->setAttentionCapture(true);
        torch::NoGradGuard noGrad;
        fixture.model->forward(fixture.io.at("input"));
        const auto sites = fixture.model->attentionSites();
        std::vector<torch::Tensor> maps;
        for (std::size_t block = 0; block < sites.size(); ++block) {
            const auto key = "attn." + std::to_string(block);
            QVERIFY2(fixture.io.count(key), key.c_str());
            const auto& map = sites[block]->captured();
            QCOMPARE(test::shapeString(map), test::shapeString(fixture.io.at(key)));
            QVERIFY(test::maxAbsDifference(map, fixture.io.at(key)) <= 1e-4);
            maps.push_back(map);
        }
        if (fixture.io.count("rollout")) {
            auto* vit = dynamic_cast<VisionTransformerImpl*>(fixture.model.get());
            QVERIFY(vit);
            const auto rollout = attentionRollout(maps, vit->numPrefixTokens(), vit->gridSize());
            QCOMPARE(test::shapeString(rollout), test::shapeString(fixture.io.at("rollout")));
            QVERIFY(test::maxAbsDifference(rollout, fixture.io.at("rollout")) <= 1e-4);
        }
        fixture.model->setAttentionCapture(false);
        QVERIFY(!sites.front()->captured().defined());
    }

    void savedFileHasTimmKeysAndShapes_data() { fixtureRows(); }
    void savedFileHasTimmKeysAndShapes()
    {
        QFETCH(QString, name);
        const auto spec = specFromConfig(fixtureIndex()[name.toStdString()]["config"]);
        const auto fresh = createModel(spec);
        QTemporaryDir dir;
        const std::filesystem::path saved = dir.filePath(QStringLiteral("saved.safetensors")).toStdString();
        saveWeights(*fresh, saved, {{"format", "pt"}});
        const auto ours = safetensors::readHeader(saved);
        const auto timm = safetensors::readHeader(test::timmFixturesDir() / (name.toStdString() + ".safetensors"));
        QStringList onlyOurs, onlyTimm, otherShape;
        for (const auto& [key, info] : ours) {
            const auto it = timm.find(key);
            if (it == timm.end())
                onlyOurs << QString::fromStdString(key);
            else if (it->second.shape != info.shape || it->second.dtype != info.dtype)
                otherShape << QString::fromStdString(key);
        }
        for (const auto& [key, info] : timm) {
            if (ours.count(key) == 0)
                onlyTimm << QString::fromStdString(key);
        }
        QVERIFY2(onlyOurs.isEmpty(), qPrintable(QStringLiteral("not in timm: ") + onlyOurs.join(QStringLiteral(", "))));
        QVERIFY2(onlyTimm.isEmpty(), qPrintable(QStringLiteral("missing: ") + onlyTimm.join(QStringLiteral(", "))));
        QVERIFY2(otherShape.isEmpty(), qPrintable(QStringLiteral("other shape: ") + otherShape.join(QStringLiteral(", "))));
        // timm's parameter count for this config, ours built and ours counted without building.
        const auto timmParameters = fixtureIndex()[name.toStdString()]["params"].get<std::int64_t>();
        QCOMPARE(countParameters(*fresh), timmParameters);
        QCOMPARE(parameterCount(spec), timmParameters);
    }

    void saveAndReloadGiveIdenticalOutputs_data() { fixtureRows(); }
    void saveAndReloadGiveIdenticalOutputs()
    {
        QFETCH(QString, name);
        auto fixture = loadFixture(name);
        QTemporaryDir dir;
        const std::filesystem::path saved = dir.filePath(QStringLiteral("roundtrip.safetensors")).toStdString();
        saveWeights(*fixture.model, saved);
        auto reloaded = createModelWithWeights(fixture.spec, saved);
        reloaded->eval();
        torch::NoGradGuard noGrad;
        const auto& input = fixture.io.at("input");
        QVERIFY(torch::equal(fixture.model->forward(input), reloaded->forward(input)));
    }
};

QTEST_GUILESS_MAIN(TestTimmFixtures)
#include "tst_timm_fixtures.moc"
