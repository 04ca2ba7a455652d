from hw.common.layout import pack, unpack  # noqa: F401  (moved; users switch at merge)
