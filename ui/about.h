#pragma once

#include <QString>

namespace vitlab {
struct RuntimeInfo;
}

namespace vitlab::ui {

/// The About box's rich text: what ViTLab is and the versions it runs on.
QString aboutText(const RuntimeInfo& runtime);

} // namespace vitlab::ui
