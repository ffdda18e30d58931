#pragma once

#include <QAbstractListModel>
#include <QFuture>
#include <QImage>
#include <QListView>

#include <atomic>
#include <memory>
#include <vector>

namespace vitlab::ui {

/// The short name of a source: its file name, or for an image inside a dataset file its entry
/// ("t10k:12").
QString sourceCaption(const QString& source);

/// One picture in a grid: where it comes from (a file or a Dataset source) and what to say.
struct GridItem {
    QString source;
    QString caption;
    QString toolTip;
    /// Paints the caption in a warning colour (a misclassified or problem image).
    bool flagged = false;
};

/// The grid's items; thumbnails arrive later, in batches, with one dataChanged per batch.
class ImageGridModel : public QAbstractListModel {
    Q_OBJECT
public:
    static constexpr int SourceRole = Qt::UserRole + 1;

    using QAbstractListModel::QAbstractListModel;
    int rowCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;

    void setItems(std::vector<GridItem> items);
    void appendItems(std::vector<GridItem> items);
    void setThumbnails(int first, const QVector<QImage>& images);
    /// New captions for every item, in one change (e.g. once predictions arrive).
    void setCaptions(const QStringList& captions, const QVector<bool>& flagged);
    const GridItem& item(int row) const { return m_items[static_cast<std::size_t>(row)]; }
    int thumbnailCount() const { return m_thumbnailCount; }
    /// Shown until an item's thumbnail arrives; it also fixes the item size of the uniform grid.
    void setPlaceholder(const QImage& placeholder) { m_placeholder = placeholder; }

private:
    QImage m_placeholder;
    std::vector<GridItem> m_items;
    std::vector<QImage> m_thumbnails;
    int m_thumbnailCount = 0;
};

/// A grid of image thumbnails with captions. Decoding runs on a worker thread and the model takes
/// the thumbnails in batches, so thousands of items never block the window.
class ImageGrid : public QListView {
    Q_OBJECT
public:
    explicit ImageGrid(QWidget* parent = nullptr, int thumbnailSize = 96);
    ~ImageGrid() override;

    void setItems(std::vector<GridItem> items);
    /// Adds items after the current ones; only the new ones are decoded.
    void appendItems(std::vector<GridItem> items);
    void clear() { setItems({}); }
    int count() const { return m_model->rowCount(); }
    ImageGridModel* gridModel() const { return m_model; }
    /// Thumbnails decoded so far (for tests and progress).
    int loadedCount() const { return m_model->thumbnailCount(); }
    QString currentSource() const;

    /// Decodes one image for display; a null image when it cannot be read.
    static QImage decode(const QString& source, int maxSide);

Q_SIGNALS:
    void currentSourceChanged(const QString& source);
    void sourceActivated(const QString& source);
    void thumbnailsLoaded();

private:
    void cancelLoading();
    void loadThumbnails(int first, QStringList sources);

    ImageGridModel* m_model = nullptr;
    int m_thumbnailSize;
    std::shared_ptr<std::atomic<bool>> m_cancel;
    QFuture<void> m_loading;
};

} // namespace vitlab::ui
