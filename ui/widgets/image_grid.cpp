#include "ui/widgets/image_grid.h"

#include "core/facade/engine.h"

#include <QElapsedTimer>
#include <QFileInfo>
#include <QPainter>
#include <QtConcurrent/QtConcurrentRun>

namespace vitlab::ui {

int ImageGridModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : static_cast<int>(m_items.size());
}

QVariant ImageGridModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() >= rowCount())
        return {};
    const auto row = static_cast<std::size_t>(index.row());
    switch (role) {
    case Qt::DisplayRole:
        return m_items[row].caption;
    case Qt::ToolTipRole:
        return m_items[row].toolTip.isEmpty() ? m_items[row].source : m_items[row].toolTip;
    case Qt::DecorationRole:
        return m_thumbnails[row].isNull() ? QVariant(m_placeholder) : QVariant(m_thumbnails[row]);
    case Qt::ForegroundRole:
        return m_items[row].flagged ? QVariant(QColor(190, 40, 40)) : QVariant();
    case SourceRole:
        return m_items[row].source;
    default:
        return {};
    }
}

void ImageGridModel::setItems(std::vector<GridItem> items)
{
    beginResetModel();
    m_items = std::move(items);
    m_thumbnails.assign(m_items.size(), QImage());
    m_thumbnailCount = 0;
    endResetModel();
}

void ImageGridModel::appendItems(std::vector<GridItem> items)
{
    if (items.empty())
        return;
    const int first = rowCount();
    beginInsertRows({}, first, first + static_cast<int>(items.size()) - 1);
    for (auto& item : items)
        m_items.push_back(std::move(item));
    m_thumbnails.resize(m_items.size());
    endInsertRows();
}

void ImageGridModel::setCaptions(const QStringList& captions, const QVector<bool>& flagged)
{
    const int n = std::min<int>(rowCount(), static_cast<int>(captions.size()));
    for (int i = 0; i < n; ++i) {
        m_items[static_cast<std::size_t>(i)].caption = captions[i];
        m_items[static_cast<std::size_t>(i)].flagged = i < flagged.size() && flagged[i];
    }
    if (n > 0)
        Q_EMIT dataChanged(index(0), index(n - 1), {Qt::DisplayRole, Qt::ForegroundRole});
}

void ImageGridModel::setThumbnails(int first, const QVector<QImage>& images)
{
    if (images.isEmpty() || first < 0 || first + images.size() > rowCount())
        return;
    for (int i = 0; i < images.size(); ++i)
        m_thumbnails[static_cast<std::size_t>(first + i)] = images[i];
    m_thumbnailCount += static_cast<int>(images.size());
    Q_EMIT dataChanged(index(first), index(first + static_cast<int>(images.size()) - 1), {Qt::DecorationRole});
}

ImageGrid::ImageGrid(QWidget* parent, int thumbnailSize)
    : QListView(parent)
    , m_model(new ImageGridModel(this))
    , m_thumbnailSize(thumbnailSize)
{
    QImage placeholder(thumbnailSize, thumbnailSize, QImage::Format_RGB32);
    placeholder.fill(QColor(235, 235, 235));
    m_model->setPlaceholder(placeholder);
    setModel(m_model);
    setViewMode(QListView::IconMode);
    setResizeMode(QListView::Adjust);
    setMovement(QListView::Static);
    setUniformItemSizes(true);
    setWordWrap(true);
    setIconSize(QSize(thumbnailSize, thumbnailSize));
    setGridSize(QSize(thumbnailSize + 44, thumbnailSize + 40));
    setSpacing(4);
    setSelectionMode(QAbstractItemView::SingleSelection);
    connect(selectionModel(), &QItemSelectionModel::currentChanged, this,
            [this](const QModelIndex& current) { Q_EMIT currentSourceChanged(current.data(ImageGridModel::SourceRole).toString()); });
    connect(this, &QListView::activated, this,
            [this](const QModelIndex& index) { Q_EMIT sourceActivated(index.data(ImageGridModel::SourceRole).toString()); });
}

ImageGrid::~ImageGrid()
{
    cancelLoading();
}

QString ImageGrid::currentSource() const
{
    return currentIndex().data(ImageGridModel::SourceRole).toString();
}

QString sourceCaption(const QString& source)
{
    const int hash = source.lastIndexOf(QLatin1Char('#'));
    return hash >= 0 ? source.mid(hash + 1) : QFileInfo(source).fileName();
}

QImage ImageGrid::decode(const QString& source, int maxSide)
{
    try {
        const auto decoded = vitlab::loadSourceImage(source.toStdString(), 3);
        // IDX sources come back grey whatever was asked.
        const bool grey = decoded.channels == 1;
        QImage image(decoded.pixels.data(), decoded.width, decoded.height, decoded.width * decoded.channels,
                     grey ? QImage::Format_Grayscale8 : QImage::Format_RGB888);
        // Scale (or copy) while `decoded` still owns the pixels.
        if (decoded.width <= maxSide && decoded.height <= maxSide)
            return decoded.width < maxSide / 2 ? image.scaled(maxSide, maxSide, Qt::KeepAspectRatio, Qt::FastTransformation)
                                               : image.copy();
        return image.scaled(maxSide, maxSide, Qt::KeepAspectRatio, Qt::SmoothTransformation);
    } catch (const std::exception&) {
        return {};
    }
}

void ImageGrid::cancelLoading()
{
    if (m_cancel)
        *m_cancel = true;
    m_loading.waitForFinished(); // one image at most: the job checks the flag between images
}

void ImageGrid::setItems(std::vector<GridItem> items)
{
    cancelLoading();
    QStringList sources;
    for (const auto& item : items)
        sources << item.source;
    m_model->setItems(std::move(items));
    loadThumbnails(0, sources);
}

void ImageGrid::appendItems(std::vector<GridItem> items)
{
    // Finish (not cancel) the current batch first: its rows keep their thumbnails.
    m_loading.waitForFinished();
    QStringList sources;
    for (const auto& item : items)
        sources << item.source;
    const int first = m_model->rowCount();
    m_model->appendItems(std::move(items));
    loadThumbnails(first, sources);
}

void ImageGrid::loadThumbnails(int firstRow, QStringList sources)
{
    if (sources.isEmpty())
        return;
    m_cancel = std::make_shared<std::atomic<bool>>(false);
    auto cancel = m_cancel;
    const int side = m_thumbnailSize;
    m_loading = QtConcurrent::run([this, sources, cancel, side, firstRow] {
        QVector<QImage> batch;
        int first = firstRow;
        QElapsedTimer sinceFlush;
        sinceFlush.start();
        auto flush = [&](bool last) {
            if (!batch.isEmpty())
                QMetaObject::invokeMethod(this, [this, first, batch, cancel] {
                    if (!*cancel)
                        m_model->setThumbnails(first, batch);
                }, Qt::QueuedConnection);
            first += static_cast<int>(batch.size());
            batch.clear();
            sinceFlush.restart();
            if (last)
                QMetaObject::invokeMethod(this, [this, cancel] {
                    if (!*cancel)
                        Q_EMIT thumbnailsLoaded();
                }, Qt::QueuedConnection);
        };
        for (const QString& source : sources) {
            if (*cancel)
                return;
            batch.push_back(decode(source, side));
            // Batches of a tenth of a second: the view repaints a few times, not once per image.
            if (sinceFlush.elapsed() > 100 || batch.size() >= 256)
                flush(false);
        }
        flush(true);
    });
}

} // namespace vitlab::ui
