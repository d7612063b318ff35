"""Review: the queue, the pair screen, bulk actions, reviewers and the dashboard."""
