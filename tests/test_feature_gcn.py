"""FeatureGCN against the explicit matrix formula X~_F = Phi(H_F (I - A_F) V_F W_F)."""

import torch
from helpers import bn_rows, randomize_bn

from dgcn.models import FeatureGCN


def test_matches_explicit_matrix_formula():
    d = 16
    module = FeatureGCN(d, zero_init=False).double().eval()
    randomize_bn(module.reproject[1])
    x = torch.randn(2, d, 7, 9, dtype=torch.float64)
    phi = module.to_nodes.weight[:, :, 0, 0]  # D2 x D
    theta = module.to_features.weight[:, :, 0, 0]  # D1 x D
    a_f = module.adjacency.weight[:, :, 0]  # D2 x D2
    w_f = module.state_update.weight[:, :, 0].T  # D1 x D1
    out_proj = module.reproject[0].weight[:, :, 0, 0]  # D x D1
    identity = torch.eye(d // 4, dtype=torch.float64)
    for n in range(2):
        pixels = x[n].flatten(1).T  # X: [N, D]
        h_f = pixels @ phi.T  # [N, D2]
        v_f = h_f.T @ (pixels @ theta.T)  # V_F = phi(X)^T theta(X): [D2, D1]
        m_f = (identity - a_f) @ v_f @ w_f
        expected = bn_rows(module.reproject[1], (h_f @ m_f) @ out_proj.T)  # Phi: [N, D]
        torch.testing.assert_close(module(x)[n], expected.T.reshape(d, 7, 9), rtol=0, atol=1e-9)


def test_node_count_and_feature_width():
    module = FeatureGCN(32)
    h, v = module.nodes(torch.randn(1, 32, 5, 5))
    assert h.shape == (1, 8, 25)  # D2 = D/4 nodes
    assert v.shape == (1, 8, 16)  # D1 = D/2 features per node
