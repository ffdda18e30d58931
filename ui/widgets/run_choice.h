#pragma once

#include <QString>

class QComboBox;

namespace vitlab::ui {

/// Fills `box` with the runs that have weights to load (the shared runs folder, newest first),
/// each item's data its directory, and selects `keep` (added first when it lives elsewhere).
/// Returns the number of runs; signals of `box` are blocked meanwhile.
int fillRunChoices(QComboBox* box, const QString& keep);

} // namespace vitlab::ui
