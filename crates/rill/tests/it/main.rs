//! The client against a real SPU on 127.0.0.1:0.

mod admin;
mod consume;
mod produce;
mod spu;
