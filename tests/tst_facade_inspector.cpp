// The app's inspector through the torch-free facade: a trained run explains an image with every
// method its family supports, heads come as a grid, and bad requests are errors with messages.
#include "core/errors.h"
#include "core/facade/inspector.h"
#include "synthetic_images.h"
#include "trained_run.h"

#include <QImage>
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

using namespace vitlab;

class TestFacadeInspector : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    std::filesystem::path m_run;
    std::string m_image;

private Q_SLOTS:
    void initTestCase()
    {
        const std::filesystem::path root = m_dir.path().toStdString();
        QVERIFY(test::writePatternFolder(root / "data", 3, 8, 16, /*splits=*/true));
        m_run = test::trainTinyRun(root, root / "data", "run", test::kTinyVitJson, 2);
        QVERIFY(!m_run.empty());
        m_image = (root / "data" / "val" / "class_1" / "2.png").string();
    }

    void explainsWithEveryMethodOfTheFamily()
    {
        facade::Inspector inspector(m_run);
        QCOMPARE(inspector.family(), std::string("vit"));
        QCOMPARE(inspector.classNames().size(), std::size_t(3));
        for (const auto& method : inspector.methods()) {
            facade::AttentionRequest request;
            request.method = method;
            const auto view = inspector.explain(m_image, request);
            QCOMPARE(view.gridHeight, 4);
            QCOMPARE(view.gridWidth, 4);
            QCOMPARE(view.map.size(), std::size_t(16));
            QCOMPARE(*std::max_element(view.map.begin(), view.map.end()), 1.0f);
            QCOMPARE(view.image.width, 16);
            QCOMPARE(view.image.pixels.size(), std::size_t(16 * 16 * 3));
            QCOMPARE(view.heatmap.width, view.image.width);
            QCOMPARE(view.heatmap.pixels.size(), view.image.pixels.size());
            QCOMPARE(view.layers, 2);
            QCOMPARE(view.heads, 2);
            QCOMPARE(view.probabilities.size(), std::size_t(3));
        }
    }

    void headsComeAsAGrid()
    {
        facade::Inspector inspector(m_run);
        facade::AttentionRequest request;
        request.layer = 0;
        request.hasQuery = true;
        request.queryX = 0.6;
        request.queryY = 0.2;
        const auto heads = inspector.heads(m_image, request);
        QCOMPARE(heads.heads, 2);
        QCOMPARE(heads.maps.size(), std::size_t(2 * 4 * 4));
        QCOMPARE(heads.heatmaps.size(), std::size_t(2));
        for (const auto& heatmap : heads.heatmaps) {
            QCOMPARE(heatmap.width, 16);
            QCOMPARE(heatmap.pixels.size(), std::size_t(16 * 16 * 3));
        }
        // Different heads look at different places, so their coloured maps differ.
        QVERIFY(heads.heatmaps[0].pixels != heads.heatmaps[1].pixels);
        // Both at once (one decode) give the same as the separate calls.
        const auto inspection = inspector.inspect(m_image, request);
        QCOMPARE(inspection.heads.maps, heads.maps);
        QCOMPARE(inspection.view.map, inspector.explain(m_image, request).map);
        QCOMPARE(inspector.queryTokens(), std::vector<std::string>{"class"});
        QVERIFY(!inspector.hasInnerAttention());
    }

    void savesTheOverlayAtTheChosenOpacity()
    {
        facade::Inspector inspector(m_run);
        const auto view = inspector.explain(m_image, {});
        const auto imageOnly = m_dir.filePath(QStringLiteral("image-only.png"));
        const auto mapOnly = m_dir.filePath(QStringLiteral("map-only.png"));
        facade::Inspector::saveOverlay(view, 0.0, imageOnly.toStdString());
        facade::Inspector::saveOverlay(view, 1.0, mapOnly.toStdString());
        const auto pixels = [](const QString& path) {
            const QImage png = QImage(path).convertToFormat(QImage::Format_RGB888);
            std::vector<std::uint8_t> rgb;
            for (int y = 0; y < png.height(); ++y)
                rgb.insert(rgb.end(), png.constScanLine(y), png.constScanLine(y) + 3 * png.width());
            return rgb;
        };
        QCOMPARE(pixels(imageOnly), view.image.pixels);
        QCOMPARE(pixels(mapOnly), view.heatmap.pixels);
        QVERIFY_THROWS_EXCEPTION(IoError, facade::Inspector::saveOverlay(view, 0.5, m_run / "no" / "such" / "x.png"));
        QVERIFY_THROWS_EXCEPTION(ConfigError, facade::Inspector::saveOverlay({}, 0.5, imageOnly.toStdString()));
    }

    void badRequestsAreErrors()
    {
        facade::Inspector inspector(m_run);
        facade::AttentionRequest request;
        request.method = "gradcam";
        QVERIFY_THROWS_EXCEPTION(ConfigError, inspector.explain(m_image, request));
        request.method = "attention";
        request.fusion = "median";
        QVERIFY_THROWS_EXCEPTION(ConfigError, inspector.explain(m_image, request));
        request.fusion = "mean";
        QVERIFY_THROWS_EXCEPTION(FormatError, inspector.explain(m_image + ".missing", request));
        QVERIFY_THROWS_EXCEPTION(IoError, facade::Inspector(m_run / "nowhere"));
    }
};

QTEST_GUILESS_MAIN(TestFacadeInspector)
#include "tst_facade_inspector.moc"
