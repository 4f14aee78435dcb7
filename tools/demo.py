"""`make demo`: the main job on a fresh machine (placeholder until the end-to-end flow lands)."""

print("usvid demo: the end-to-end phantom training flow is not built yet (see the open issues).")
