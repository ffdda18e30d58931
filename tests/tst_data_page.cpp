// The Data and Model pages on their own: a folder dropped on the window is scanned off the UI
// thread; a new validation share rescans; the recent list remembers folders; a folder that cannot
// be used says why; the Model page proposes settings from the scan (small images, photos).
#include "synthetic_images.h"
#include "ui/main_window.h"
#include "ui/pages/data_page.h"
#include "ui/pages/model_page.h"

#include <QDir>
#include <QFile>
#include <QMenu>
#include <QLabel>
#include <QMessageBox>
#include <QMimeData>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QToolButton>
#include <QTreeWidget>
#include <QtTest>

using vitlab::ui::DataPage;
using vitlab::ui::MainWindow;
using vitlab::ui::ModelPage;

class TestDataPage : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    vitlab::RuntimeInfo m_runtime;
    QString m_flat;

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        QSettings::setDefaultFormat(QSettings::IniFormat);
        QSettings::setPath(QSettings::IniFormat, QSettings::UserScope, m_dir.path() + QStringLiteral("/settings"));
        QCoreApplication::setOrganizationName(QStringLiteral("ViTLabDataTest"));
        m_runtime = vitlab::facade::startEngine();
        m_flat = m_dir.path() + QStringLiteral("/flat");
        QVERIFY(vitlab::test::writePatternFolder(m_flat.toStdString(), 2, 20, 16));
    }

    void aDroppedFolderIsScannedAndRemembered()
    {
        MainWindow window(m_runtime);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        window.showPage(MainWindow::Page::Model);
        QSignalSpy scanned(window.dataPage(), &DataPage::datasetScanned);
        QMimeData mime;
        mime.setUrls({QUrl::fromLocalFile(m_flat)});
        QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QApplication::sendEvent(&window, &enter);
        QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QApplication::sendEvent(&window, &drop);
        QCOMPARE(window.currentPage(), MainWindow::Page::Data);
        QVERIFY(window.dataPage()->isScanning() || scanned.count() == 1);
        QVERIFY(scanned.count() == 1 || scanned.wait(30000));
        // No explicit split: 20% of each class is held out.
        QTableWidget* table = window.dataPage()->classTable();
        QCOMPARE(table->rowCount(), 2);
        QCOMPARE(table->item(0, 1)->data(Qt::DisplayRole).toInt(), 16);
        QCOMPARE(table->item(0, 2)->data(Qt::DisplayRole).toInt(), 4);

        // A new validation share rescans (after a short pause in typing).
        auto* share = window.dataPage()->findChild<QSpinBox*>(QStringLiteral("validationPercent"));
        QVERIFY(share->isEnabled());
        share->setValue(50);
        QVERIFY(scanned.wait(30000));
        QCOMPARE(table->item(0, 2)->data(Qt::DisplayRole).toInt(), 10);
        QCOMPARE(window.dataPage()->validationFraction(), 0.5);

        auto* recent = window.dataPage()->findChild<QToolButton*>(QStringLiteral("recentButton"));
        QVERIFY(recent->isEnabled());
        QCOMPARE(recent->menu()->actions().size(), 1);
        QCOMPARE(recent->menu()->actions().front()->text(), m_flat);
    }

    void aFolderWithOneClassSaysWhy()
    {
        const QString one = m_dir.path() + QStringLiteral("/one");
        QVERIFY(vitlab::test::writePatternFolder(one.toStdString(), 1, 3, 16));
        MainWindow window(m_runtime);
        window.show();
        QSignalSpy failed(window.dataPage(), &DataPage::scanFailed);
        QVERIFY(window.openDataset(one));
        QVERIFY(failed.wait(30000));
        QVERIFY2(failed.at(0).at(0).toString().contains(QStringLiteral("class")), qPrintable(failed.at(0).at(0).toString()));
        QTRY_VERIFY(window.findChild<QMessageBox*>(QStringLiteral("errorBox")) != nullptr);
        QVERIFY(!window.dataPage()->isScanned());
        QCOMPARE(window.dataPage()->classTable()->rowCount(), 0);
        QVERIFY(!window.startTraining()); // and Start refuses with a message, not a crash
    }

    void linksBackIntoTheFolderAreListedNotCounted()
    {
        // A class folder that links to the dataset's root: its images stay in their own classes.
        const QString linked = m_dir.path() + QStringLiteral("/linked");
        QVERIFY(vitlab::test::writePatternFolder(linked.toStdString(), 2, 5, 16));
        const auto firstClass = QDir(linked).entryList(QDir::Dirs | QDir::NoDotAndDotDot).first();
        const QString link = linked + QLatin1Char('/') + firstClass + QStringLiteral("/everything");
        QVERIFY(QFile::link(linked, link));
        MainWindow window(m_runtime);
        window.show();
        QSignalSpy scanned(window.dataPage(), &DataPage::datasetScanned);
        QVERIFY(window.openDataset(linked));
        QVERIFY(scanned.count() == 1 || scanned.wait(30000));
        QTableWidget* table = window.dataPage()->classTable();
        QCOMPARE(table->rowCount(), 2);
        for (int row = 0; row < 2; ++row) {
            QCOMPARE(table->item(row, 1)->data(Qt::DisplayRole).toInt() + table->item(row, 2)->data(Qt::DisplayRole).toInt(),
                     5);
        }
        auto* problems = window.dataPage()->findChild<QTreeWidget*>(QStringLiteral("problemTree"));
        QTreeWidgetItem* links = nullptr;
        for (int i = 0; i < problems->topLevelItemCount(); ++i) {
            if (problems->topLevelItem(i)->text(0).startsWith(QStringLiteral("Links not followed")))
                links = problems->topLevelItem(i);
        }
        QVERIFY(links);
        QCOMPARE(links->text(0), QStringLiteral("Links not followed (1)"));
        QCOMPARE(links->child(0)->text(0), QStringLiteral("everything"));
        QVERIFY2(links->child(0)->text(1).contains(QStringLiteral("own folder")), qPrintable(links->child(0)->text(1)));
    }

    void modelDefaultsFollowTheData()
    {
        ModelPage page(m_runtime);
        vitlab::ScanReport photos;
        photos.classes = {{"cat", 3000, 500}, {"dog", 3000, 500}};
        photos.maxWidth = photos.maxHeight = 640;
        photos.meanWidth = 500;
        photos.meanHeight = 375;
        page.setDataset(photos, false);
        QCOMPARE(page.modelName(), QStringLiteral("vit_tiny_patch16_224"));
        QCOMPARE(page.trainConfig().imageSize, std::int64_t(224));
        QVERIFY(page.modelError().isEmpty());

        vitlab::ScanReport icons;
        icons.classes = {{"a", 400, 100}, {"b", 400, 100}, {"c", 40, 10}};
        icons.maxWidth = icons.maxHeight = 32;
        icons.meanWidth = icons.meanHeight = 32;
        icons.imbalanceRatio = 10;
        page.setDataset(icons, false);
        const vitlab::TrainConfig config = page.trainConfig();
        QCOMPARE(config.model, std::string("vit_tiny_d6_patch4_32"));
        QCOMPARE(config.imageSize, std::int64_t(32));
        QCOMPARE(config.epochs, 30); // few images: more passes
        QVERIFY(config.classWeights); // imbalanced: rare classes weigh more
        QVERIFY(page.costLabel()->text().contains(QStringLiteral("3 classes")));
    }
};

QTEST_MAIN(TestDataPage)
#include "tst_data_page.moc"
