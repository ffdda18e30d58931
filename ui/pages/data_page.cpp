#include "ui/pages/data_page.h"

#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QSettings>
#include <QVBoxLayout>

namespace vitlab::ui {

namespace {
const char* const kLastFolderKey = "data/lastFolder";
}

DataPage::DataPage(QWidget* parent)
    : QWidget(parent)
    , m_summary(new QLabel(this))
    , m_directory(new QLabel(this))
    , m_openFolder(new QPushButton(tr("Open image folder…"), this))
    , m_useDemo(new QPushButton(tr("Use the Fashion-MNIST demo"), this))
{
    m_summary->setObjectName(QStringLiteral("datasetSummary"));
    m_directory->setObjectName(QStringLiteral("datasetDirectory"));
    m_openFolder->setObjectName(QStringLiteral("openFolderButton"));
    m_useDemo->setObjectName(QStringLiteral("useDemoButton"));
    QFont summaryFont = m_summary->font();
    summaryFont.setPointSizeF(summaryFont.pointSizeF() * 1.4);
    summaryFont.setBold(true);
    m_summary->setFont(summaryFont);
    m_directory->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_openFolder->setToolTip(tr("A folder with one sub-folder of images per class"));
    m_useDemo->setToolTip(tr("70 000 grey 28×28 pictures of clothing in 10 classes"));

    auto* buttons = new QHBoxLayout;
    buttons->addWidget(m_openFolder);
    buttons->addWidget(m_useDemo);
    buttons->addStretch();

    auto* layout = new QVBoxLayout(this);
    layout->addWidget(m_summary);
    layout->addWidget(m_directory);
    layout->addLayout(buttons);
    layout->addStretch();

    connect(m_openFolder, &QPushButton::clicked, this, &DataPage::chooseFolder);
    connect(m_useDemo, &QPushButton::clicked, this, [this] { selectDataset(QString::fromLatin1(kFashionMnistName)); });
    showDataset();
}

bool DataPage::selectDataset(const QString& request, QString* error)
{
    DatasetLocation location;
    std::string reason;
    if (!facade::tryResolveDataset(request.toStdString(), location, reason)) {
        const QString message = QString::fromStdString(reason);
        if (error)
            *error = message;
        Q_EMIT datasetRejected(message);
        return false;
    }
    m_dataset = location;
    m_hasDataset = true;
    if (!location.builtin)
        QSettings().setValue(kLastFolderKey, QString::fromStdString(location.directory.string()));
    showDataset();
    Q_EMIT datasetChanged(QString::fromStdString(m_dataset.displayName),
                          QString::fromStdString(m_dataset.directory.string()));
    return true;
}

void DataPage::chooseFolder()
{
    const QString start = QSettings().value(kLastFolderKey).toString();
    const QString folder = QFileDialog::getExistingDirectory(this, tr("Open image folder"), start);
    if (!folder.isEmpty())
        selectDataset(folder);
}

void DataPage::showDataset()
{
    if (!m_hasDataset) {
        m_summary->setText(tr("No dataset yet"));
        m_directory->setText(tr("Open a folder with one sub-folder of images per class, or try the Fashion-MNIST demo."));
        return;
    }
    m_summary->setText(m_dataset.builtin ? tr("%1 (built-in demo)").arg(QString::fromStdString(m_dataset.displayName))
                                         : QString::fromStdString(m_dataset.displayName));
    m_directory->setText(QString::fromStdString(m_dataset.directory.string()));
}

} // namespace vitlab::ui
