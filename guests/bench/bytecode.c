/* A stack-machine bytecode interpreter with switch dispatch (an indirect jump per instruction):
 * runs a bytecode program counting primes below N by trial division and summing Collatz lengths.
 * Usage: bytecode [N]  (default 30,000). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum op { PUSH, LOAD, STORE, ADD, SUB, MUL, MOD, DIV, LT, EQ, JMP, JZ, JNZ, DUP, DROP, HALT };

typedef struct { uint8_t op; int32_t arg; } insn;

static int64_t run(const insn *code, int64_t *vars) {
    int64_t stack[64];
    int sp = 0;
    for (int pc = 0;;) {
        const insn in = code[pc++];
        switch (in.op) {
        case PUSH: stack[sp++] = in.arg; break;
        case LOAD: stack[sp++] = vars[in.arg]; break;
        case STORE: vars[in.arg] = stack[--sp]; break;
        case ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case MOD: sp--; stack[sp - 1] %= stack[sp]; break;
        case DIV: sp--; stack[sp - 1] /= stack[sp]; break;
        case LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case EQ: sp--; stack[sp - 1] = stack[sp - 1] == stack[sp]; break;
        case JMP: pc = in.arg; break;
        case JZ: if (stack[--sp] == 0) pc = in.arg; break;
        case JNZ: if (stack[--sp] != 0) pc = in.arg; break;
        case DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case DROP: sp--; break;
        case HALT: return vars[0];
        default: fprintf(stderr, "bad opcode %d at %d\n", in.op, pc - 1); exit(1);
        }
    }
}

/* vars: 0 primes, 1 n, 2 d, 3 limit, 4 collatz sum, 5 x */
static const insn program[] = {
    /* 0: for n = 2; n < limit; n++ */
    {PUSH, 2}, {STORE, 1},
    /* 2: loop_n */ {LOAD, 1}, {LOAD, 3}, {LT, 0}, {JZ, 44},
    /* 6: d = 2 */ {PUSH, 2}, {STORE, 2},
    /* 8: loop_d: if d*d > n -> prime */ {LOAD, 2}, {LOAD, 2}, {MUL, 0}, {LOAD, 1}, {PUSH, 1}, {ADD, 0}, {LT, 0},
    {JZ, 25},
    /* 16: if n % d == 0 -> not prime */ {LOAD, 1}, {LOAD, 2}, {MOD, 0}, {JZ, 29},
    /* 20: d++ */ {LOAD, 2}, {PUSH, 1}, {ADD, 0}, {STORE, 2}, {JMP, 8},
    /* 25: prime */ {LOAD, 0}, {PUSH, 1}, {ADD, 0}, {STORE, 0},
    /* 29: collatz steps of n, added to vars[4] */ {LOAD, 1}, {STORE, 5},
    /* 31: loop_c: while x != 1 */ {LOAD, 5}, {PUSH, 1}, {EQ, 0}, {JNZ, 57},
    /* 35: x odd? */ {LOAD, 5}, {PUSH, 2}, {MOD, 0}, {JNZ, 50},
    /* 39: x /= 2 */ {LOAD, 5}, {PUSH, 2}, {DIV, 0}, {STORE, 5}, {JMP, 45},
    /* 44: end */ {HALT, 0},
    /* 45: count a step */ {LOAD, 4}, {PUSH, 1}, {ADD, 0}, {STORE, 4}, {JMP, 31},
    /* 50: x = 3x + 1 */ {LOAD, 5}, {PUSH, 3}, {MUL, 0}, {PUSH, 1}, {ADD, 0}, {STORE, 5}, {JMP, 45},
    /* 57: n++ */ {LOAD, 1}, {PUSH, 1}, {ADD, 0}, {STORE, 1}, {JMP, 2},
};

int main(int argc, char **argv) {
    int64_t vars[8] = {0};
    vars[3] = argc > 1 ? atol(argv[1]) : 30000;
    int64_t primes = run(program, vars);
    printf("primes below %lld: %lld; collatz steps of 2..%lld: %lld\n", (long long)vars[3], (long long)primes,
           (long long)vars[3] - 1, (long long)vars[4]);
    return 0;
}
