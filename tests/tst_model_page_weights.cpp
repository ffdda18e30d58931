// The Model page's "Start from": timm's tags for the chosen model (cached or not, with sizes), a
// download with progress and Cancel off the UI thread, and the photo suggestion that fine-tunes
// pretrained weights when they are cached or the Hub answers (the fake Hub on 127.0.0.1).
#include "core/facade/engine.h"
#include "ui/pages/model_page.h"

#include "fake_hub.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QtTest>

#include <random>

using vitlab::test::FakeHub;
using vitlab::test::randomBytes;
using vitlab::ui::ModelPage;
namespace fs = std::filesystem;

namespace {

const QString kDeit = QStringLiteral("hub:deit_tiny_patch16_224.fb_in1k");
const QString kPhotoWeights = QStringLiteral("hub:vit_tiny_patch16_224.augreg_in21k_ft_in1k");

/// A folder of photos as a scan reports it: 3 classes of 100, about 400 x 300 px.
vitlab::ScanReport photoReport()
{
    vitlab::ScanReport report;
    for (const char* name : {"daisy", "rose", "tulip"}) {
        vitlab::ClassCount count;
        count.name = name;
        count.train = 100;
        report.classes.push_back(count);
    }
    report.minWidth = 300, report.maxWidth = 500, report.minHeight = 200, report.maxHeight = 400;
    report.meanWidth = 400, report.meanHeight = 300;
    return report;
}

} // namespace

class TestModelPageWeights : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    fs::path m_root;
    vitlab::RuntimeInfo m_runtime;
    int m_caches = 0;

    QComboBox* startFrom(ModelPage& page) { return page.findChild<QComboBox*>(QStringLiteral("startFromBox")); }
    QPushButton* button(ModelPage& page, const char* name) { return page.findChild<QPushButton*>(QLatin1String(name)); }
    QString status(ModelPage& page) { return page.findChild<QLabel*>(QStringLiteral("weightsStatus"))->text(); }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        m_root = fs::path(m_dir.path().toStdString()) / "hub";
        const std::string config = R"({"architecture": "x", "num_classes": 1000, "pretrained_cfg": {"mean": [0.5, 0.5, 0.5]}})";
        for (const auto& weights : {kDeit, kPhotoWeights}) {
            const auto repository = "timm/" + weights.mid(4).toStdString();
            vitlab::test::writeHubFile(m_root, repository, "model.safetensors", randomBytes(6 << 20, 11));
            vitlab::test::writeHubFile(m_root, repository, "config.json", config);
        }
        m_runtime = vitlab::facade::startEngine();
    }
    void init()
    {
        // A fresh, empty cache per test; the Hub nowhere unless a test starts one.
        const auto cache = fs::path(m_dir.path().toStdString()) / ("cache" + std::to_string(++m_caches));
        qputenv("HF_HUB_CACHE", QByteArray::fromStdString(cache.string()));
        qputenv("HF_ENDPOINT", "http://127.0.0.1:9");
        qunsetenv("HF_HUB_OFFLINE");
    }

    void startFromOffersTheModelsTags()
    {
        ModelPage page(m_runtime);
        auto* box = startFrom(page);
        QVERIFY(page.setModel(QStringLiteral("deit_tiny_patch16_224")));
        QCOMPARE(box->count(), 3); // random, timm's one tag, a file
        QVERIFY2(box->itemText(1).startsWith(QStringLiteral("ImageNet weights (timm/deit_tiny_patch16_224.fb_in1k, ~2")),
                 qPrintable(box->itemText(1)));
        QVERIFY(box->itemText(1).endsWith(QStringLiteral(" MB, to download)")));
        QVERIFY(page.setModel(QStringLiteral("vit_base_patch16_224")));
        QCOMPARE(box->count(), 2 + 9);
        QVERIFY(page.setModel(QStringLiteral("vit_micro_patch4_28")));
        QCOMPARE(box->count(), 2); // a preset: timm publishes nothing for it

        QVERIFY(page.setModel(QStringLiteral("deit_tiny_patch16_224")));
        QVERIFY(page.setStartFrom(QStringLiteral("hub")));
        QCOMPARE(QString::fromStdString(page.trainConfig().weights), kDeit);
        QVERIFY(!page.pretrainedReady());
        QVERIFY(button(page, "downloadButton")->isVisibleTo(&page));
        QVERIFY(status(page).contains(QStringLiteral("Not downloaded yet")));
        // Another model keeps "pretrained", with that model's default tag.
        QVERIFY(page.setModel(QStringLiteral("swin_tiny_patch4_window7_224")));
        QCOMPARE(QString::fromStdString(page.trainConfig().weights),
                 QStringLiteral("hub:swin_tiny_patch4_window7_224.ms_in1k"));

        QVERIFY(page.setStartFrom(QString()));
        QVERIFY(page.trainConfig().weights.empty());
        QCOMPARE(page.trainConfig().freeze, std::string("none"));
        QVERIFY(page.pretrainedReady());
        QVERIFY(!page.findChild<QLineEdit*>(QStringLiteral("weightsEdit"))->isEnabled());
        QVERIFY(page.setStartFrom(QStringLiteral("/data/my.safetensors")));
        QCOMPARE(page.trainConfig().weights, std::string("/data/my.safetensors"));
        QVERIFY(page.findChild<QLineEdit*>(QStringLiteral("weightsEdit"))->isEnabled());
    }

    void downloadShowsProgressAndCancels()
    {
        FakeHub hub(m_root, "slow", m_dir.filePath("download.log").toStdString());
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        qputenv("HF_ENDPOINT", QByteArray::fromStdString(hub.endpoint()));
        ModelPage page(m_runtime);
        QVERIFY(page.setModel(QStringLiteral("deit_tiny_patch16_224")));
        QVERIFY(page.setStartFrom(kDeit));
        QSignalSpy ended(&page, &ModelPage::pretrainedDownloadEnded);
        auto* progress = page.findChild<QProgressBar*>(QStringLiteral("downloadProgress"));
        QTest::mouseClick(button(page, "downloadButton"), Qt::LeftButton);
        QVERIFY(page.isDownloading());
        QTRY_VERIFY(progress->value() > 0);
        QVERIFY(progress->isVisibleTo(&page));
        QVERIFY(progress->text().contains(QStringLiteral(" of 6.3 MB")));
        QTest::mouseClick(button(page, "cancelDownloadButton"), Qt::LeftButton);
        QTRY_COMPARE(ended.count(), 1);
        QCOMPARE(ended[0][0].toBool(), false);
        QVERIFY2(status(page).contains(QStringLiteral("cancelled")), qPrintable(status(page)));
        QVERIFY(!page.pretrainedReady());

        QTest::mouseClick(button(page, "downloadButton"), Qt::LeftButton);
        QTRY_COMPARE_WITH_TIMEOUT(ended.count(), 2, 30000);
        QCOMPARE(ended[1][0].toBool(), true);
        QVERIFY(page.pretrainedReady());
        QVERIFY2(startFrom(page)->currentText().endsWith(QStringLiteral("6.3 MB, cached)")),
                 qPrintable(startFrom(page)->currentText()));
        QVERIFY(!button(page, "downloadButton")->isVisibleTo(&page));
        QVERIFY(status(page).contains(QStringLiteral("ready")));
        // The second download resumed where the cancelled one stopped.
        QVERIFY(hub.requests().back().range.startsWith(QStringLiteral("bytes=")));
    }

    void demoSuggestsATimeBudget()
    {
        vitlab::ScanReport demo;
        for (int c = 0; c < 10; ++c) {
            vitlab::ClassCount count;
            count.name = "class " + std::to_string(c);
            count.train = 6000;
            demo.classes.push_back(count);
        }
        demo.minWidth = demo.maxWidth = demo.minHeight = demo.maxHeight = 28;
        demo.meanWidth = demo.meanHeight = 28;
        // The budget suits the machine, and the suggestion says which: a CPU gets 15 minutes (in
        // float32 the 2-block preset, in native bfloat16 the 4-block one), a GPU the recipe's epochs.
        auto machine = m_runtime;
        machine.cudaAvailable = false;
        machine.cpuDescription = "Test CPU, family 23";
        machine.cpuBfloat16Native = false;
        ModelPage page(machine);
        page.setDataset(demo, true);
        auto* budget = page.findChild<QSpinBox*>(QStringLiteral("budgetBox"));
        QCOMPARE(budget->value(), 15);
        QCOMPARE(page.trainConfig().budgetMinutes, 15.0);
        // Float32 on a CPU: the 2-block preset, which fits twice the epochs into the budget, at
        // batch 64 for twice the steps.
        QCOMPARE(page.trainConfig().model, std::string("vit_micro_d2_r5_s4_28"));
        QCOMPARE(page.trainConfig().batchSize, std::int64_t(64));
        QCOMPARE(page.trainConfig().learningRate, 1.5e-3);
        QVERIFY(!page.findChild<QSpinBox*>(QStringLiteral("epochsBox"))->isEnabled());
        const auto text = page.findChild<QLabel*>(QStringLiteral("suggestionLabel"))->text();
        QVERIFY2(text.contains(QStringLiteral("15 minutes")) && text.contains(QStringLiteral("Test CPU, family 23"))
                     && text.contains(QStringLiteral("no native bfloat16")),
                 qPrintable(text));
        budget->setValue(0); // none: the epochs count again
        QVERIFY(page.findChild<QSpinBox*>(QStringLiteral("epochsBox"))->isEnabled());
        QCOMPARE(page.trainConfig().budgetMinutes, 0.0);

        machine.cpuBfloat16Native = true;
        ModelPage bf16Page(machine);
        bf16Page.setDataset(demo, true);
        QCOMPARE(bf16Page.trainConfig().budgetMinutes, 15.0);
        QCOMPARE(bf16Page.trainConfig().model, std::string("vit_micro_r5_s4_28"));
        QCOMPARE(bf16Page.trainConfig().batchSize, std::int64_t(128));
        QVERIFY(bf16Page.findChild<QLabel*>(QStringLiteral("suggestionLabel"))->text().contains(QStringLiteral("bfloat16 native")));

        machine.cudaAvailable = true;
        ModelPage gpuPage(machine);
        gpuPage.setDataset(demo, true);
        QCOMPARE(gpuPage.trainConfig().budgetMinutes, 0.0);
        QCOMPARE(gpuPage.trainConfig().model, std::string("vit_micro_r5_s4_28"));
        QVERIFY(gpuPage.findChild<QSpinBox*>(QStringLiteral("epochsBox"))->isEnabled());
        QCOMPARE(gpuPage.findChild<QSpinBox*>(QStringLiteral("epochsBox"))->value(), 12);
    }

    void photosAreFineTunedWhenWeightsCanBeHad()
    {
        auto* unreachable = new ModelPage(m_runtime);
        qputenv("HF_HUB_OFFLINE", "1");
        unreachable->setDataset(photoReport(), false);
        auto* suggestion = unreachable->findChild<QLabel*>(QStringLiteral("suggestionLabel"));
        QVERIFY2(suggestion->text().contains(QStringLiteral("neither cached nor reachable")), qPrintable(suggestion->text()));
        QVERIFY(startFrom(*unreachable)->currentData().toString().isEmpty());
        delete unreachable;
        qunsetenv("HF_HUB_OFFLINE");

        FakeHub hub(m_root, "normal", m_dir.filePath("suggest.log").toStdString());
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        qputenv("HF_ENDPOINT", QByteArray::fromStdString(hub.endpoint()));
        // Not cached, but the Hub answers (asked off the UI thread): fine-tune, downloading first.
        ModelPage page(m_runtime);
        page.setDataset(photoReport(), false);
        QTRY_COMPARE(startFrom(page)->currentData().toString(), kPhotoWeights);
        QCOMPARE(page.modelName(), QStringLiteral("vit_tiny_patch16_224"));
        QCOMPARE(page.findChild<QDoubleSpinBox*>(QStringLiteral("learningRateBox"))->value(), 1e-4);
        QCOMPARE(page.trainConfig().epochs, 10);
        auto* label = page.findChild<QLabel*>(QStringLiteral("suggestionLabel"));
        QVERIFY2(label->text().contains(QStringLiteral("downloaded before training starts")), qPrintable(label->text()));

        // Cached: fine-tuning at once, without asking anyone.
        vitlab::facade::fetchPretrained(kPhotoWeights.toStdString(), {});
        ModelPage cachedPage(m_runtime);
        cachedPage.setDataset(photoReport(), false);
        QCOMPARE(startFrom(cachedPage)->currentData().toString(), kPhotoWeights);
        QVERIFY(cachedPage.findChild<QLabel*>(QStringLiteral("suggestionLabel"))->text().contains(QStringLiteral("cached")));
        QVERIFY(cachedPage.pretrainedReady());
    }
};

QTEST_MAIN(TestModelPageWeights)
#include "tst_model_page_weights.moc"
