"""Building blocks shared by HPTR and PersonLab: encoders, pyramid decoder, heads, losses."""
