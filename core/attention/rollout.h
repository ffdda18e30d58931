#pragma once

#include <torch/torch.h>

#include <array>
#include <vector>

namespace vitlab {

/// How the heads of one block are combined before rollout.
enum class HeadFusion { Mean, Max, Min };

struct RolloutOptions {
    HeadFusion fusion = HeadFusion::Mean;
    /// Fraction of the weakest attention weights per row set to zero (never the diagonal),
    /// as in Gildenblat's variant; 0 keeps everything (Abnar & Zuidema).
    double discardRatio = 0.0;
    /// The query token whose row is read: 0 is the class token, 1 DeiT's distillation token.
    std::int64_t queryToken = 0;
};

/// Attention rollout (Abnar & Zuidema, 2020) as defined in shared/fixtures/timm/README.md: per
/// block the heads fused, plus the identity, rows renormalised to 1; the blocks multiplied in
/// order; the query token's row over the patch tokens, shaped to `grid` and scaled to a maximum
/// of 1. `attentions` are (N, heads, T, T) per block. Returns (N, grid_h, grid_w).
torch::Tensor attentionRollout(const std::vector<torch::Tensor>& attentions, std::int64_t numPrefixTokens,
                               std::array<std::int64_t, 2> grid, const RolloutOptions& options = {});

} // namespace vitlab
