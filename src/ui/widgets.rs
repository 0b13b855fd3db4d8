//! Pieces the panes share.

pub mod dialog;
pub mod editor;
pub mod header;
pub mod help;
pub mod status_bar;
pub mod table;
