//! The card state file: one file, replaced atomically. Owner: persistence/vpcd helper.
