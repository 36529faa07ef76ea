"""Training: the end-to-end loop (``loop.fit``), head-only training on a frozen backbone
(``frozen.fit_head``), losses, the poly schedule and sampling. The checkpoint format lives in
``dgcn.checkpoint``, the process helpers in ``dgcn.distributed``.

Nothing is imported here, so ``import dgcn.training.X`` stays as light as module X.
"""
