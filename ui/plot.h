#pragma once

// QCustomPlot's header uses Qt's `signals` and `foreach` keywords, which this project turns off
// (QT_NO_KEYWORDS) because they break LibTorch's headers. Include QCustomPlot through here.
#ifndef QCUSTOMPLOT_USE_LIBRARY
#define QCUSTOMPLOT_USE_LIBRARY
#endif
#define signals Q_SIGNALS
#define foreach Q_FOREACH
#include <qcustomplot.h>
#undef foreach
#undef signals
