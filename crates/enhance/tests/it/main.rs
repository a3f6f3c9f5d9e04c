mod helpers;
mod synthesis;
