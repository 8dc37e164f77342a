"""What the bench sections share: the fleet run, the floor, API call counts,
CPU from /proc, py-spy profiles and the end-to-end entry point."""
