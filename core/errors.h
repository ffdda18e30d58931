#pragma once

#include <stdexcept>
#include <string>

namespace vitlab {

/// Base of every error the engine reports on purpose. `what()` is a sentence a user can act on.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A file or folder could not be read or written.
class IoError : public Error {
public:
    using Error::Error;
};

/// A setting, name or option is unknown or out of range.
class ConfigError : public Error {
public:
    using Error::Error;
};

/// Data does not have the form it must have: a malformed file, a tensor of the wrong shape.
class FormatError : public Error {
public:
    using Error::Error;
};

/// A group of training processes could not form, or a collective failed: a peer died, hung or
/// never came.
class GroupError : public Error {
public:
    using Error::Error;
};

/// A tensor or image does not have the shape the operation needs.
class ShapeError : public Error {
public:
    using Error::Error;
};

} // namespace vitlab
