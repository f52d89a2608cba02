//! gofer: the file broker of sentry mode. See README.md in this folder.
