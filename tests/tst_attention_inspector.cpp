// The attention inspector as a person uses it, offscreen: an image of a trained run shows its
// map, a click on a patch asks what that patch attends to, a click on a head of the grid shows
// that head, the opacity slider only re-blends, the overlay saves as a PNG, and bad images or
// runs give a reason instead of a map.
#include "core/facade/engine.h"
#include "synthetic_images.h"
#include "trained_run.h"
#include "ui/widgets/attention_inspector.h"
#include "ui/widgets/attention_overlay.h"

#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QSignalSpy>
#include <QSlider>
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

using namespace vitlab;
using vitlab::ui::AttentionInspector;

namespace {

std::size_t argmax(const std::vector<float>& values, std::size_t first = 0, std::size_t count = 0)
{
    const auto begin = values.begin() + static_cast<std::ptrdiff_t>(first);
    const auto end = count ? begin + static_cast<std::ptrdiff_t>(count) : values.end();
    return static_cast<std::size_t>(std::max_element(begin, end) - begin);
}

} // namespace

class TestAttentionInspector : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QString m_run;
    QString m_image;

    /// Trains `modelJson` for one epoch on the pattern folder; returns the run folder.
    QString trainTiny(const std::string& name, const std::string& modelJson)
    {
        const std::filesystem::path root = m_dir.path().toStdString();
        return QString::fromStdString(test::trainTinyRun(root, root / "data", name, modelJson, 1).string());
    }

    /// Shows `inspector` on the test image of `run` and waits for its first map.
    bool open(AttentionInspector& inspector, const QString& run)
    {
        inspector.resize(500, 700);
        inspector.show();
        inspector.setRun(run);
        inspector.setSource(m_image);
        return settle(inspector);
    }

    /// Waits until the inspector has settled on a map for its current request.
    static bool settle(AttentionInspector& inspector)
    {
        QSignalSpy ready(&inspector, &AttentionInspector::viewReady);
        if (!ready.wait(30000))
            return false;
        return QTest::qWaitFor([&] { return !inspector.isBusy(); }, 30000);
    }

private Q_SLOTS:
    void initTestCase()
    {
        facade::startEngine();
        const std::filesystem::path root = m_dir.path().toStdString();
        QVERIFY(test::writePatternFolder(root / "data", 3, 8, 16, /*splits=*/true));
        m_run = QString::fromStdString(test::trainTinyRun(root, root / "data", "run", test::kTinyVitJson, 2).string());
        QVERIFY(!m_run.isEmpty());
        m_image = QString::fromStdString((root / "data" / "val" / "class_1" / "2.png").string());
    }

    void showsTheMapAndTheHeadsOfAnImage()
    {
        AttentionInspector inspector;
        QVERIFY(open(inspector, m_run));
        QVERIFY(inspector.view());
        QCOMPARE(inspector.methodBox()->count(), 3); // rollout, attention, relevance for ViT
        QCOMPARE(inspector.methodBox()->currentData().toString(), QStringLiteral("rollout"));
        QCOMPARE(inspector.layerBox()->count(), 3); // the last block, block 1, block 2
        QCOMPARE(inspector.headBox()->count(), 3);  // all heads, head 1, head 2
        QCOMPARE(inspector.classBox()->count(), 4); // the predicted class and three names
        QCOMPARE(inspector.tokenBox()->count(), 1); // not distilled
        QVERIFY(inspector.innerBox()->isHidden());  // not TNT
        QCOMPARE(inspector.headGrid()->count(), 2);
        QVERIFY(inspector.status()->text().contains(QStringLiteral("Predicted")));
        QVERIFY(!inspector.overlay()->blended().isNull());
        QCOMPARE(inspector.overlay()->blended().size(), QSize(16, 16));
    }

    void clickingAPatchShowsWhatItAttendsTo()
    {
        AttentionInspector inspector;
        QVERIFY(open(inspector, m_run));
        inspector.methodBox()->setCurrentIndex(inspector.methodBox()->findData(QStringLiteral("attention")));
        QVERIFY(settle(inspector));
        const std::vector<float> fromClassToken = inspector.view()->map;

        // The top-left patch of a 4x4 grid: a click at an eighth of the image's width and height.
        const QRect image = inspector.overlay()->imageRect();
        QVERIFY(image.width() > 16);
        QTest::mouseClick(inspector.overlay(), Qt::LeftButton, {}, image.topLeft() + QPoint(image.width() / 8, image.height() / 8));
        QVERIFY(settle(inspector));
        const auto request = inspector.request();
        QVERIFY(request.hasQuery);
        QVERIFY(request.queryX > 0.1 && request.queryX < 0.15);
        QVERIFY(request.queryY > 0.1 && request.queryY < 0.15);
        QVERIFY(inspector.view()->map != fromClassToken);

        // Reset goes back to the class token and its map.
        auto* reset = inspector.findChild<QPushButton*>(QString(), Qt::FindChildrenRecursively);
        for (auto* button : inspector.findChildren<QPushButton*>())
            if (button->text() == QStringLiteral("Reset"))
                reset = button;
        QVERIFY(reset && reset->isEnabled());
        reset->click();
        QVERIFY(settle(inspector));
        QVERIFY(!inspector.request().hasQuery);
        QCOMPARE(inspector.view()->map, fromClassToken);
    }

    void clickingAHeadOfTheGridShowsThatHead()
    {
        AttentionInspector inspector;
        QVERIFY(open(inspector, m_run));
        QCOMPARE(inspector.headGrid()->count(), 2);
        const QRect second = inspector.headGrid()->visualItemRect(inspector.headGrid()->item(1));
        QTest::mouseClick(inspector.headGrid()->viewport(), Qt::LeftButton, {}, second.center());
        QVERIFY(settle(inspector));
        QCOMPARE(inspector.methodBox()->currentData().toString(), QStringLiteral("attention"));
        QCOMPARE(inspector.headBox()->currentData().toInt(), 1);
        QCOMPARE(inspector.request().head, 1);
        // The map on show is the second tile's map: the same strongest patch.
        const auto* heads = inspector.headMaps();
        QVERIFY(heads);
        const std::size_t area = std::size_t(heads->gridHeight * heads->gridWidth);
        QCOMPARE(argmax(inspector.view()->map), argmax(heads->maps, area, area));
    }

    void opacityReblendsWithoutAskingTheModel()
    {
        AttentionInspector inspector;
        QVERIFY(open(inspector, m_run));
        const QImage picture = ui::toQImage(inspector.view()->image).convertToFormat(QImage::Format_RGB32);
        const QImage heatmap = ui::toQImage(inspector.view()->heatmap).convertToFormat(QImage::Format_RGB32);
        inspector.opacitySlider()->setValue(0);
        QVERIFY(!inspector.isBusy());
        QCOMPARE(inspector.overlay()->blended(), picture);
        inspector.opacitySlider()->setValue(100);
        QVERIFY(!inspector.isBusy());
        QCOMPARE(inspector.overlay()->blended(), heatmap);
        inspector.opacitySlider()->setValue(40);
        QVERIFY(inspector.overlay()->blended() != picture);
        QVERIFY(inspector.overlay()->blended() != heatmap);
    }

    void relevanceOfAChosenClassAndBurstsOfChanges()
    {
        AttentionInspector inspector;
        QVERIFY(open(inspector, m_run));
        // Several changes while a job runs end in one map for the last state.
        inspector.methodBox()->setCurrentIndex(inspector.methodBox()->findData(QStringLiteral("relevance")));
        inspector.classBox()->setCurrentIndex(inspector.classBox()->findData(0));
        inspector.classBox()->setCurrentIndex(inspector.classBox()->findData(2));
        QVERIFY(QTest::qWaitFor([&] { return !inspector.isBusy(); }, 30000));
        QTest::qWait(50);
        QVERIFY(QTest::qWaitFor([&] { return !inspector.isBusy(); }, 30000));
        QCOMPARE(inspector.request().method, std::string("relevance"));
        QCOMPARE(inspector.view()->classIndex, 2);
        QVERIFY(inspector.classBox()->isEnabled());
        QVERIFY(!inspector.headBox()->isEnabled());
    }

    void savesTheOverlayAsShown()
    {
        AttentionInspector inspector;
        QString error;
        QVERIFY(!inspector.saveOverlay(m_dir.filePath(QStringLiteral("none.png")), &error));
        QVERIFY(error.contains(QStringLiteral("no attention map")));
        inspector.setRun(m_run);
        inspector.setSource(m_image);
        QVERIFY(settle(inspector));
        const QString path = m_dir.filePath(QStringLiteral("overlay.png"));
        QVERIFY2(inspector.saveOverlay(path, &error), qPrintable(error));
        QCOMPARE(QImage(path).size(), QSize(16, 16));
        QVERIFY(!inspector.saveOverlay(m_dir.filePath(QStringLiteral("missing/folder/overlay.png")), &error));
        QVERIFY(error.contains(QStringLiteral("missing/folder")));
    }

    void swinOffersWindowAttentionAndGradCam()
    {
        const QString run = trainTiny("swin", R"({"family": "swin", "img_size": 16, "patch_size": 2, "window_size": 4,
                                                   "embed_dim": 16, "depths": [1, 1], "num_heads": [1, 2]})");
        QVERIFY(!run.isEmpty());
        AttentionInspector inspector;
        QVERIFY(open(inspector, run));
        // Rollout needs global attention: Swin starts on the attention of its last block.
        QCOMPARE(inspector.methodBox()->count(), 2);
        QCOMPARE(inspector.request().method, std::string("attention"));
        QCOMPARE(inspector.layerBox()->count(), 3);
        QCOMPARE(inspector.headBox()->count(), 3); // the last stage has two heads
        QCOMPARE(inspector.headGrid()->count(), 2);
        QCOMPARE(inspector.view()->gridHeight, 4);
        // The first block lives on the 8x8 grid with one head.
        inspector.layerBox()->setCurrentIndex(inspector.layerBox()->findData(0));
        QVERIFY(settle(inspector));
        QCOMPARE(inspector.view()->gridHeight, 8);
        QCOMPARE(inspector.headGrid()->count(), 1);
        inspector.methodBox()->setCurrentIndex(inspector.methodBox()->findData(QStringLiteral("gradcam")));
        QVERIFY(settle(inspector));
        QCOMPARE(inspector.request().method, std::string("gradcam"));
        QCOMPARE(inspector.view()->image.width, 16);
    }

    void tntShowsInnerAttentionOnRequest()
    {
        const QString run = trainTiny("tnt", R"({"family": "tnt", "img_size": 16, "patch_size": 4, "embed_dim": 32,
                                                 "inner_dim": 8, "depth": 1, "num_heads_outer": 2,
                                                 "num_heads_inner": 1, "first_stride": 2})");
        QVERIFY(!run.isEmpty());
        AttentionInspector inspector;
        QVERIFY(open(inspector, run));
        QVERIFY(!inspector.innerBox()->isHidden());
        QCOMPARE(inspector.headGrid()->count(), 2);
        inspector.methodBox()->setCurrentIndex(inspector.methodBox()->findData(QStringLiteral("attention")));
        QVERIFY(settle(inspector));
        const std::vector<float> outer = inspector.view()->map;
        inspector.innerBox()->setChecked(true);
        QVERIFY(settle(inspector));
        QVERIFY(inspector.request().innerAttention);
        QCOMPARE(inspector.headGrid()->count(), 1); // one inner head
        QVERIFY(inspector.view()->map != outer);
    }

    void badImagesAndRunsGiveAReason()
    {
        const QString corrupt = m_dir.filePath(QStringLiteral("corrupt.png"));
        std::ofstream(corrupt.toStdString()) << "not an image at all";
        AttentionInspector inspector;
        inspector.setRun(m_run);
        QSignalSpy failed(&inspector, &AttentionInspector::viewFailed);
        inspector.setSource(corrupt);
        QVERIFY(failed.wait(30000));
        QVERIFY(!inspector.view());
        QVERIFY(inspector.status()->text().startsWith(QStringLiteral("Cannot explain this image")));
        // The next good image is explained by the same, loaded model.
        inspector.setSource(m_image);
        QVERIFY(settle(inspector));

        AttentionInspector nowhere;
        QSignalSpy noRun(&nowhere, &AttentionInspector::viewFailed);
        nowhere.setRun(m_dir.filePath(QStringLiteral("no-such-run")));
        nowhere.setSource(m_image);
        QVERIFY(noRun.wait(30000));
        QVERIFY(noRun.first().first().toString().contains(QStringLiteral("no-such-run")));
    }
};

QTEST_MAIN(TestAttentionInspector)
#include "tst_attention_inspector.moc"
