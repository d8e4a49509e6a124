// All differentiable ops, for code that wants them in one include.
#pragma once

#include "llmkit/core/autograd.h"
#include "llmkit/ops/activation.h"
#include "llmkit/ops/attention.h"
#include "llmkit/ops/dropout.h"
#include "llmkit/ops/elementwise.h"
#include "llmkit/ops/embedding.h"
#include "llmkit/ops/loss.h"
#include "llmkit/ops/matmul.h"
#include "llmkit/ops/norm.h"
#include "llmkit/ops/reduce.h"
#include "llmkit/ops/rnn.h"
#include "llmkit/ops/rope.h"
#include "llmkit/ops/shape.h"
#include "llmkit/ops/softmax.h"
