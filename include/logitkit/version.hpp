// logitkit — version.
// SPDX-License-Identifier: MIT
#pragma once

#define LOGITKIT_VERSION_MAJOR 0
#define LOGITKIT_VERSION_MINOR 1
#define LOGITKIT_VERSION_PATCH 0
#define LOGITKIT_VERSION_STRING "0.1.0"
