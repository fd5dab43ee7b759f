"""Dashboard benchmark and the seeding/server helpers its tests share."""
