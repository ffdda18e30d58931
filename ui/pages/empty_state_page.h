#pragma once

#include <QWidget>

class QLabel;

namespace vitlab::ui {

/// A page that has nothing to show yet: a title and a sentence that says what to do next.
class EmptyStatePage : public QWidget {
    Q_OBJECT
public:
    EmptyStatePage(const QString& title, const QString& explanation, QWidget* parent = nullptr);

    QString title() const;
    QString explanation() const;
    void setExplanation(const QString& explanation);

private:
    QLabel* m_title = nullptr;
    QLabel* m_explanation = nullptr;
};

} // namespace vitlab::ui
