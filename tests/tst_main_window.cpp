#include "core/facade/engine.h"
#include "ui/main_window.h"
#include "ui/pages/data_page.h"
#include "ui/pages/model_page.h"
#include "ui/pages/train_page.h"
#include "ui/widgets/training_charts.h"

#include <QAction>
#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QListWidget>
#include <QMessageBox>
#include <QPushButton>
#include <QSettings>
#include <QStackedWidget>
#include <QStandardItemModel>
#include <QTemporaryDir>
#include <QtTest>
#include "ui/plot.h"

using vitlab::ui::MainWindow;

class TestMainWindow : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_settingsDir.isValid());
        QSettings::setDefaultFormat(QSettings::IniFormat);
        QSettings::setPath(QSettings::IniFormat, QSettings::UserScope, m_settingsDir.path());
        QCoreApplication::setOrganizationName(QStringLiteral("ViTLabTest"));
        m_runtime = vitlab::facade::startEngine();
    }

    void init() { QSettings().clear(); }

    // On a machine with GPUs the Model page offers each by name and memory, and float16; the
    // run is configured for the one picked. (This machine's runtime, with two GPUs added.)
    void modelPageListsEachGpu()
    {
        auto runtime = m_runtime;
        runtime.cudaAvailable = true;
        runtime.cudaUnavailableReason.clear();
        runtime.cudaDevices = {{0, "NVIDIA H200", 150'000'000'000, 9, 0}, {1, "Tesla T4", 16'000'000'000, 7, 5}};
        vitlab::ui::ModelPage page(runtime);
        auto* device = page.deviceBox();
        QCOMPARE(device->count(), 4);
        QCOMPARE(device->itemText(2), QStringLiteral("GPU 0: NVIDIA H200, 139.7 GiB, compute capability 9.0"));
        QCOMPARE(device->itemText(3), QStringLiteral("GPU 1: Tesla T4, 14.9 GiB, compute capability 7.5"));
        device->setCurrentIndex(3);
        QCOMPARE(page.trainConfig().device, std::string("cuda:1"));
        auto* precision = page.findChild<QComboBox*>(QStringLiteral("precisionBox"));
        const int fp16 = precision->findData(QStringLiteral("fp16"));
        QVERIFY(fp16 >= 0);
        QVERIFY(qobject_cast<QStandardItemModel*>(precision->model())->item(fp16)->isEnabled());
        precision->setCurrentIndex(fp16);
        QCOMPARE(page.trainConfig().precision, vitlab::Precision::Float16);
        auto* tf32 = page.findChild<QCheckBox*>(QStringLiteral("tf32Box"));
        QVERIFY(tf32->isEnabled());
        QVERIFY(!page.trainConfig().tf32);
        tf32->setChecked(true);
        QVERIFY(page.trainConfig().tf32);

        // Without CUDA: one disabled CUDA entry saying why, and no float16.
        vitlab::RuntimeInfo cpuOnly = m_runtime;
        cpuOnly.cudaAvailable = false;
        cpuOnly.cudaDevices.clear();
        cpuOnly.cudaUnavailableReason = "no CUDA device visible";
        vitlab::ui::ModelPage cpuPage(cpuOnly);
        QCOMPARE(cpuPage.deviceBox()->count(), 3);
        auto* cpuItems = qobject_cast<QStandardItemModel*>(cpuPage.deviceBox()->model());
        QVERIFY(!cpuItems->item(2)->isEnabled());
        QVERIFY(cpuItems->item(2)->toolTip().contains(QStringLiteral("no CUDA device visible")));
        auto* cpuPrecision = cpuPage.findChild<QComboBox*>(QStringLiteral("precisionBox"));
        QVERIFY(!qobject_cast<QStandardItemModel*>(cpuPrecision->model())->item(cpuPrecision->findData(QStringLiteral("fp16")))->isEnabled());
        QVERIFY(!cpuPage.findChild<QCheckBox*>(QStringLiteral("tf32Box"))->isEnabled());
    }

    void hasEveryPageInOrder()
    {
        MainWindow window(m_runtime);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        auto* list = window.findChild<QListWidget*>(QStringLiteral("pageList"));
        auto* stack = window.findChild<QStackedWidget*>(QStringLiteral("pages"));
        QVERIFY(list && stack);
        const QStringList expected{QStringLiteral("Data"), QStringLiteral("Model"), QStringLiteral("Train"),
                                   QStringLiteral("Evaluate"), QStringLiteral("Predict"), QStringLiteral("Inspect"),
                                   QStringLiteral("Runs")};
        QCOMPARE(list->count(), expected.size());
        QCOMPARE(stack->count(), expected.size());
        for (int row = 0; row < expected.size(); ++row)
            QCOMPARE(list->item(row)->text(), expected[row]);

        // Clicking an entry in the side list shows its page.
        const QRect evaluateRect = list->visualItemRect(list->item(3));
        QTest::mouseClick(list->viewport(), Qt::LeftButton, {}, evaluateRect.center());
        QCOMPARE(window.currentPage(), MainWindow::Page::Evaluate);
        QCOMPARE(stack->currentWidget()->objectName(), QStringLiteral("evaluatePage"));
    }

    void viewMenuShortcutsSwitchPages()
    {
        MainWindow window(m_runtime);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        auto* trainAction = window.findChild<QAction*>(QStringLiteral("trainPageAction"));
        QVERIFY(trainAction);
        QCOMPARE(trainAction->shortcut(), QKeySequence(Qt::CTRL | Qt::Key_3));
        QTest::keyClick(&window, Qt::Key_3, Qt::ControlModifier);
        QCOMPARE(window.currentPage(), MainWindow::Page::Train);
        QTest::keyClick(&window, Qt::Key_6, Qt::ControlModifier);
        QCOMPARE(window.currentPage(), MainWindow::Page::Inspect);
        QTest::keyClick(&window, Qt::Key_7, Qt::ControlModifier);
        QCOMPARE(window.currentPage(), MainWindow::Page::Runs);
    }

    void statusBarShowsDeviceAndThreads()
    {
        MainWindow window(m_runtime);
        auto* device = window.findChild<QLabel*>(QStringLiteral("deviceStatus"));
        QVERIFY(device);
        QVERIFY(device->text().contains(QString::fromStdString(m_runtime.deviceDescription)));
        QVERIFY(device->text().contains(QStringLiteral("%1 threads").arg(m_runtime.intraOpThreads)));
    }

    void demoDatasetIsSelectedFromTheMenu()
    {
        MainWindow window(m_runtime);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        window.showPage(MainWindow::Page::Model);
        QVERIFY(!window.dataPage()->hasDataset());
        window.findChild<QAction*>(QStringLiteral("useDemoAction"))->trigger();
        QCOMPARE(window.currentPage(), MainWindow::Page::Data);
        QVERIFY(window.dataPage()->hasDataset());
        QVERIFY(window.dataPage()->dataset().builtin);
        auto* summary = window.dataPage()->findChild<QLabel*>(QStringLiteral("datasetSummary"));
        QVERIFY(summary->text().contains(QStringLiteral("Fashion-MNIST")));
        auto* status = window.findChild<QLabel*>(QStringLiteral("datasetStatus"));
        QCOMPARE(status->text(), QStringLiteral("Dataset: Fashion-MNIST"));
    }

    void badFolderIsReportedAndKeepsTheDataset()
    {
        MainWindow window(m_runtime);
        window.show();
        QVERIFY(window.openDataset(QStringLiteral("fashion-mnist")));
        QVERIFY(!window.openDataset(QStringLiteral("/no/such/folder/anywhere")));
        QTRY_VERIFY(window.findChild<QMessageBox*>(QStringLiteral("errorBox")) != nullptr);
        auto* box = window.findChild<QMessageBox*>(QStringLiteral("errorBox"));
        QVERIFY(box->isVisible());
        QVERIFY(box->text().contains(QStringLiteral("/no/such/folder/anywhere")));
        QVERIFY(window.dataPage()->dataset().builtin);
        box->accept();
    }

    void aboutBoxNamesTheVersions()
    {
        MainWindow window(m_runtime);
        window.show();
        window.findChild<QAction*>(QStringLiteral("aboutAction"))->trigger();
        auto* box = window.findChild<QMessageBox*>(QStringLiteral("aboutBox"));
        QVERIFY(box);
        QTRY_VERIFY(box->isVisible());
        const QString text = box->text();
        QVERIFY(text.contains(QStringLiteral("ViTLab %1").arg(QString::fromStdString(m_runtime.vitlabVersion))));
        QVERIFY(text.contains(QString::fromStdString(m_runtime.torchVersion)));
        QVERIFY(text.contains(QString::fromLatin1(qVersion())));
        QVERIFY(text.contains(QString::fromStdString(m_runtime.opencvVersion)));
        QVERIFY(text.contains(QStringLiteral(QCUSTOMPLOT_VERSION_STR)));
        box->accept();
    }

    void trainPageHasEmptyChartsAndCannotStartWithoutData()
    {
        MainWindow window(m_runtime);
        QCustomPlot* plot = window.trainPage()->charts()->lossPlot();
        QVERIFY(plot);
        QCOMPARE(plot->graphCount(), 4);
        for (int i = 0; i < plot->graphCount(); ++i)
            QCOMPARE(plot->graph(i)->dataCount(), 0);
        QCOMPARE(plot->yAxis->label(), QStringLiteral("loss"));
        auto* start = window.trainPage()->findChild<QPushButton*>(QStringLiteral("startButton"));
        QVERIFY(start);
        QVERIFY(!start->isEnabled());
        QVERIFY(!window.startTraining());
    }

    void remembersPageAndGeometry()
    {
        {
            MainWindow window(m_runtime);
            window.show();
            window.resize(900, 650);
            window.showPage(MainWindow::Page::Predict);
            window.close();
        }
        MainWindow reopened(m_runtime);
        QCOMPARE(reopened.currentPage(), MainWindow::Page::Predict);
        QCOMPARE(reopened.size(), QSize(900, 650));
    }

    void pageNamesParse()
    {
        MainWindow::Page page = MainWindow::Page::Data;
        QVERIFY(MainWindow::pageFromName(QStringLiteral("Evaluate"), &page));
        QCOMPARE(page, MainWindow::Page::Evaluate);
        QVERIFY(MainWindow::pageFromName(QStringLiteral("inspect"), &page));
        QCOMPARE(page, MainWindow::Page::Inspect);
        QVERIFY(!MainWindow::pageFromName(QStringLiteral("settings"), &page));
    }

private:
    QTemporaryDir m_settingsDir;
    vitlab::RuntimeInfo m_runtime;
};

QTEST_MAIN(TestMainWindow)
#include "tst_main_window.moc"
