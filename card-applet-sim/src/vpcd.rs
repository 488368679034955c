//! The vpcd connector: a thin shell that speaks vpcd's socket protocol around a [`crate::Card`].
//! Owner: persistence/vpcd helper.
