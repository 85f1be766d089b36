"""`evt bench`: rounds at rising target rates, the rate search, and the bench report."""
