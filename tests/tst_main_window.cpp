#include "core/facade/engine.h"
#include "ui/main_window.h"
#include "ui/pages/data_page.h"
#include "ui/pages/train_page.h"
#include "ui/widgets/training_charts.h"

#include <QAction>
#include <QLabel>
#include <QListWidget>
#include <QMessageBox>
#include <QPushButton>
#include <QSettings>
#include <QStackedWidget>
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
