#include "core/attention/rollout.h"

#include "core/errors.h"

namespace vitlab {

torch::Tensor attentionRollout(const std::vector<torch::Tensor>& attentions, std::int64_t numPrefixTokens,
                               std::array<std::int64_t, 2> grid, const RolloutOptions& options)
{
    if (attentions.empty())
        throw ShapeError("attention rollout needs the attention of at least one block");
    const auto& first = attentions.front();
    if (first.dim() != 4 || first.size(2) != first.size(3))
        throw ShapeError("attention maps must be (batch, heads, tokens, tokens)");
    const auto tokens = first.size(-1);
    if (tokens != numPrefixTokens + grid[0] * grid[1])
        throw ShapeError("attention over " + std::to_string(tokens) + " tokens does not match a "
                         + std::to_string(grid[0]) + "x" + std::to_string(grid[1]) + " grid with "
                         + std::to_string(numPrefixTokens) + " prefix tokens");
    if (options.queryToken < 0 || options.queryToken >= tokens)
        throw ShapeError("the rollout's query token is outside the sequence");

    torch::NoGradGuard noGrad;
    const auto identity = torch::eye(tokens, first.options().dtype(torch::kFloat32));
    torch::Tensor rollout;
    for (const auto& attention : attentions) {
        auto fused = attention.to(torch::kFloat32);
        switch (options.fusion) {
        case HeadFusion::Mean: fused = fused.mean(1); break;
        case HeadFusion::Max: fused = std::get<0>(fused.max(1)); break;
        case HeadFusion::Min: fused = std::get<0>(fused.min(1)); break;
        }
        if (options.discardRatio > 0.0) {
            const auto discard = static_cast<std::int64_t>(options.discardRatio * static_cast<double>(tokens));
            if (discard > 0) {
                auto weakest = std::get<1>(fused.topk(discard, -1, /*largest=*/false));
                auto keep = torch::ones_like(fused).scatter_(-1, weakest, 0.0);
                keep = torch::maximum(keep, identity.expand_as(keep)); // the diagonal stays
                fused = fused * keep;
            }
        }
        auto augmented = fused + identity;
        augmented = augmented / augmented.sum(-1, /*keepdim=*/true);
        rollout = rollout.defined() ? torch::matmul(augmented, rollout) : augmented;
    }
    auto map = rollout.select(1, options.queryToken).narrow(-1, numPrefixTokens, grid[0] * grid[1]);
    map = map.reshape({map.size(0), grid[0], grid[1]});
    const auto peak = std::get<0>(map.flatten(1).max(1)).clamp_min(1e-12).view({-1, 1, 1});
    return map / peak;
}

} // namespace vitlab
