"""The ML steps, one module each: preflight, data, train, evaluate, fuse, export, chat, monitor."""
