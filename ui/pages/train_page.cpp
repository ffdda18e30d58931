#include "ui/pages/train_page.h"

#include <QLabel>
#include <QVBoxLayout>
#include "ui/plot.h"

namespace vitlab::ui {

TrainPage::TrainPage(QWidget* parent)
    : QWidget(parent)
    , m_hint(new QLabel(tr("Choose data and a model, then start training. Loss and accuracy appear here as it runs."), this))
    , m_lossPlot(new QCustomPlot(this))
{
    m_hint->setWordWrap(true);
    m_lossPlot->setObjectName(QStringLiteral("lossPlot"));
    m_lossPlot->xAxis->setLabel(tr("step"));
    m_lossPlot->yAxis->setLabel(tr("loss"));
    m_lossPlot->addGraph();
    m_lossPlot->graph(0)->setName(tr("training loss"));
    m_lossPlot->setMinimumHeight(240);

    auto* layout = new QVBoxLayout(this);
    layout->addWidget(m_hint);
    layout->addWidget(m_lossPlot, 1);
}

} // namespace vitlab::ui
