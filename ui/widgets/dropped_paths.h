#pragma once

#include <QMimeData>
#include <QStringList>
#include <QUrl>

namespace vitlab::ui {

/// The local files and folders of a drag-and-drop; remote URLs are left out.
inline QStringList droppedLocalPaths(const QMimeData* mime)
{
    QStringList paths;
    for (const QUrl& url : mime->urls()) {
        if (url.isLocalFile())
            paths << url.toLocalFile();
    }
    return paths;
}

} // namespace vitlab::ui
