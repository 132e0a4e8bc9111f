"""Staff-only pages: progress, agreement, consistency vs separability, exports."""
