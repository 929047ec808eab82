"""Speed measurements of ko-sparse against the peer a user would otherwise use, in the same run."""
