"""Site-wide building blocks that belong to no feature: rate limiting, request hygiene, decorators.

The bottom of the dependency graph: `lib` imports Django only, and every app may import it."""
