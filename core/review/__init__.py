"""People in the loop: review gates, decisions, hand edits, budget reviews."""
