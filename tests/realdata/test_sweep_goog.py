"""A two-configuration sweep on the GOOG LOBSTER session: one row each, finite metrics, model hashes, backtest."""

import numpy as np
import pytest

from scalper.backtest import sweep

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def test_goog_sweep_of_two_flat_shares(goog10_tickfile, tmp_path):
    path = tmp_path / "goog.toml"
    # Few trees and resamples: the test checks the sweep's plumbing on real data, not the model's quality.
    (tmp_path / "base.toml").write_text(
        '[labels]\nhorizons_s = [5.0]\n[train]\nn_estimators = 15\nsample_weights = "uniqueness"\n'
    )
    path.write_text(
        f'base = "base.toml"\nfiles = ["{goog10_tickfile}"]\nfolds = 1\nseed = 7\nreplicates = 50\nbacktest = true\n'
        '[grid]\n"labels.flat_share" = [0.2, 0.34]\n'
    )
    spec, configs = sweep.load_sweep(path)
    table = sweep.run_sweep(sweep.sweep_tasks(spec, configs), "serial")
    assert table.height == 2 and table["error"].null_count() == 2
    assert table["labels.flat_share"].to_list() == [0.2, 0.34]
    for col in ("h5s.log_loss", "h5s.prior_log_loss", "h5s.log_loss_skill", "h5s.auc_up_down", "h5s.ece"):
        assert np.isfinite(table[col].to_numpy()).all(), col
    assert (table["h5s.rows"] > 1_000).all()
    hashes = table["h5s.onnx_sha256"].to_list()
    assert all(len(h) == 64 for h in hashes) and hashes[0] != hashes[1]
    # The engine's replay of the test span (GOOG: quote currency USD).
    assert np.allclose(table["bt.net_pnl"].to_numpy(), (table["bt.gross_pnl"] - table["bt.fees"]).to_numpy())
    assert (table["bt.fills"] >= 2 * table["bt.trades"]).all()
