"""The architectures: each a torch module plus a thin :class:`skinr.base.BaseINR`
subclass; private helpers are named after the architecture they serve."""
