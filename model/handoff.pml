/*
 * ms2m's exactly-once handoff (strategy `shadow`) as implemented, for spin.
 * model/README.md maps every process, message and variable to the code, and gives the bounds.
 *
 * Mutants (one at a time, `spin -DMUTANT_X -a handoff.pml`), each a known bug the checker must catch:
 *   MUTANT_A  the protocol before the order fix: R bound to the exchange, the copy bounded per producer
 *   MUTANT_B  the apply log (today's "cut") starts after the checkpoint instead of before it
 *   MUTANT_C  no catch-up to the fenced source's position: the copy is compared as it stands
 *   MUTANT_D  the copy is caught up and activated before the source is fenced
 *   MUTANT_E  no epoch check: a stale command of an earlier migration is obeyed
 * and two that show the other properties are not vacuous either:
 *   MUTANT_M  the primary does not skip what its marks hold (breaks no_dup)
 *   MUTANT_T  the fence waits for the copy with neither a catch-up timeout nor a look at whether it lives
 *             (breaks terminates)
 * and two that put back real gaps the model found (findings F1 and F2, both fixed: model/README.md):
 *   MUTANT_F1_ROLLBACK_WHEN_SOURCE_DEAD  a rollback that finds the source dead (after a catch-up timeout or a
 *             cancellation) still stops the copy and deletes R (breaks no_loss)
 *   MUTANT_F2_LOOK_THEN_STOP  the first F1 fix: the rollback looks whether the source lives, then stops the copy
 *             and deletes R, without unfencing the source first; the source may die in between (breaks no_loss)
 * The source may die at any step of a rollback (the F2 interleavings); once the rollback has unfenced it, that is
 * an ordinary crash of a serving instance (srvCrash, model/README.md).
 * Narration: every protocol step prints a line starting with "@", so `spin -t` on a trail reads as a story.
 */

#ifndef NS
#define NS 2            /* messages per producer */
#endif
#define NP 2            /* producers */
#define NM (NP*NS)      /* messages in all; message m is producer m/NS, sequence m%NS+1 */
#define W (NM+2)        /* room in an instance's apply history (a duplicate would overflow NM) */
#define QMAX 8
#ifndef MAXCRASH
#define MAXCRASH 1      /* instance crashes (source or copy) per run */
#endif
#ifndef MAXCONN
#define MAXCONN 1       /* broker connection losses per run */
#endif
#ifndef MAXRESTART
#define MAXRESTART 1    /* orchestrator restarts (an activity retried) per run */
#endif

/* the source may die at any step of a rollback (the F2 interleavings); MUTANT_F1 excludes them, as the model did
   when F1 was found, so its counterexample is F1's own (the source dead before the rollback starts) */
#ifdef MUTANT_F1_ROLLBACK_WHEN_SOURCE_DEAD
#define SRC_DIES_IN_ROLLBACK false
#else
#define SRC_DIES_IN_ROLLBACK (phase == PH_ROLLBACK)
#endif

#define NONE 255
#define END_E 254       /* apply-log end marker (sealReplay) */
#define CUT 253         /* MUTANT_A: the old cut marker */
#define S 0             /* the source */
#define C 1             /* the copy */
#define BIT(m) (1 << (m))
#define PROD(m) ((m) / NS)
#define SEQ(m) (((m) % NS) + 1)
#define MSG(p, s) ((p) * NS + (s) - 1)
#define MARK(i, p) mark[(i) * NP + (p)]
#define ORD(i, x) ord[(i) * W + (x)]

/* orchestrator phases (workflows/migrate-service.ts and its steps, workflows/migration-*.ts) */
#define PH_PREPARE 1
#define PH_CHECKPOINT 2
#define PH_RESTORE 3
#define PH_REPLAY 4
#define PH_FENCE 5
#define PH_FINALIZE 6
#define PH_ROLLBACK 7
#define PH_ADOPT 8
#define PH_DONE 9
#define MIGRATED 1
#define ROLLED_BACK 2
#define ADOPTED 3

/* our migration: epoch 1, id 2; the stale commands belong to an earlier migration: epoch 0, id 1 */
#define OUR_EPOCH 1
#define OUR_MIG 2
#define OLD_EPOCH 0
#define OLD_MIG 1

/* ---- the broker */
byte P[QMAX]; byte Plen;         /* primary queue <service>.primary (FIFO) */
byte R[QMAX]; byte Rlen;         /* replay queue ms2m.replay.<service>.<migration>: entries pos*8+m, or END_E */
bool Rexists;
byte pub[NP];                    /* published per producer */
byte published;                  /* bitmask of published messages */
#ifdef MUTANT_A
bool Rbound;                     /* R bound to the exchange */
byte routedR[NP];                /* per publishing channel: last sequence enqueued in R */
bool cutPending;                 /* the cut marker is on its way to R */
bool sawCut;                     /* the source applied the cut marker */
#endif

/* ---- the instances (service/core): index S or C */
bool alive[2];
bool primary[2];                 /* role: primary, else standby */
bool fenced[2];
byte epoch[2]; byte migId[2];
byte mark[2 * NP];               /* per-producer high-water marks */
byte applied[2];                 /* position in the apply sequence */
byte ord[2 * W];                 /* the apply sequence itself (the state digest is over it) */
byte has[2];                     /* bitmask: messages in the instance's state */
byte inflight[2];                /* delivered from P, applied, not yet acknowledged */
bool onP[2];                     /* consumer attached to P */
bool applyLog;                   /* the source writes its apply log to R (shadowed) */
bool replaying;                  /* the copy's replayQueue != null */
bool onR;                        /* the copy's consumer attached to R */
byte upTo;                       /* the copy's fence position (NONE: not fenced yet) */
bool adopting; bool sealed;
byte owed;                       /* the copy's suppressed outputs, by message */
bool replayGaps;
bool copyExists;
bool srcLost;
bool srcDiedInRollback;          /* the source crashed after the rollback started */
bool srvCrash;                   /* the source crashed after the rollback unfenced it: it served again, so this is an
                                    ordinary crash of a serving instance, outside the migration */

/* ---- the image (checkpoint) */
byte imgApplied; byte imgMark[NP]; byte imgOrd[W]; byte imgHas; byte imgEpoch; byte imgMig;

/* ---- the orchestrator */
byte phase; byte outcome; bool done;
byte srcApplied; byte srcMark[NP];  /* the fenced source's report */
byte crashes; byte connLosses; byte restarts;
byte emitted;                    /* outputs emitted (not resends), by message */
byte k; byte k2;                 /* scratch, always reset to 0 */

/* ---- properties */
bool bad_dup;        /* an instance applied a message twice */
bool bad_loss;       /* at the end a published message is neither applied by the serving instance nor waiting for it */
bool bad_exact;      /* the caught-up copy's position, marks or apply sequence differ from the fenced source's */
bool bad_outputs;    /* two emissions for one message (a resend is only allowed for a lost source's messages) */
bool bad_consumers;  /* at the end not exactly one live, unfenced primary */
byte rbCause;        /* why a rollback started from a definite failure: 1 a catch-up timeout, 2 a cancellation */
byte f1adopt;        /* witness: a rollback found the source dead and adopted; its rbCause */
bool f2adopt;        /* witness: the source died after the rollback started, the rollback adopted */
bool unfencedFirst;  /* the rollback's first unfence was answered (workflows/migration-run.ts unfencedFirst) */

ltl no_dup { [] !bad_dup }
ltl no_loss { [] !bad_loss }
ltl swap_exact { [] !bad_exact }
ltl outputs_once { [] !bad_outputs }
ltl one_consumer { [] !bad_consumers }
ltl safety { [] !(bad_dup || bad_loss || bad_exact || bad_outputs || bad_consumers) }
/* not a requirement: its counterexamples are witnesses that the F1 interleavings are in the model (the runner
   expects one for each cause), so no_loss covers them */
ltl no_f1_after_timeout { [] !(f1adopt == 1 && done) }
ltl no_f1_after_cancel { [] !(f1adopt == 2 && done) }
ltl no_f2_adopt { [] !(f2adopt && done) }
ltl terminates { <> done }

/* ---- queue operations */
inline appendP(x) { assert(Plen < QMAX); P[Plen] = x; Plen++ }
inline appendR(x) { if :: Rexists -> assert(Rlen < QMAX); R[Rlen] = x; Rlen++ :: else -> skip fi }
inline popP() {
  k = 0;
  do :: k + 1 < Plen -> P[k] = P[k + 1]; k++ :: else -> break od;
  Plen--; P[Plen] = 0; k = 0
}
inline popR() {
  k = 0;
  do :: k + 1 < Rlen -> R[k] = R[k + 1]; k++ :: else -> break od;
  Rlen--; R[Rlen] = 0; k = 0
}
/* a delivery returned by the broker goes back to the head of its queue */
inline pushFrontP(x) {
  assert(Plen < QMAX); k = Plen;
  do :: k > 0 -> P[k] = P[k - 1]; k-- :: else -> break od;
  P[0] = x; Plen++; k = 0
}
inline deleteR() {
  k = 0; do :: k < Rlen -> R[k] = 0; k++ :: else -> break od; k = 0;
  Rlen = 0; Rexists = false
}

/* the application's apply, at history index x (service/core/deliveries.ts settle) */
inline applyAt(i, m, x) {
  if :: has[i] & BIT(m) -> bad_dup = true; printf("@ !! I%d applies m%d (p%d#%d) a second time\n", i, m, PROD(m), SEQ(m)) :: else -> skip fi;
  has[i] = has[i] | BIT(m);
  if :: x < W -> ORD(i, x) = m :: else -> skip fi;
  MARK(i, PROD(m)) = SEQ(m)
}

inline emit(i, m) {
  if :: emitted & BIT(m) -> bad_outputs = true; printf("@ !! outputs of m%d emitted twice\n", m) :: else -> skip fi;
  emitted = emitted | BIT(m)
}

/* the instance's connection ends: the broker returns its unacknowledged delivery, its consumers go */
inline dropConnection(i) {
  if
  :: inflight[i] != NONE -> pushFrontP(inflight[i]); printf("@ broker returns unacked m%d to the head of P\n", inflight[i]); inflight[i] = NONE
  :: else -> skip
  fi;
  onP[i] = false;
  if :: i == C -> onR = false :: else -> skip fi
}

/* service/protocol.ts acceptFencing, used by service/core/commands.ts command() */
#ifdef MUTANT_E
#define ACCEPT(i, e, g) true
#else
#define ACCEPT(i, e, g) ((e) > epoch[i] || ((e) == epoch[i] && (g) == migId[i]))
#endif
inline takeFencing(i, e, g) { if :: (e) > epoch[i] -> epoch[i] = e; migId[i] = g :: else -> skip fi }

/* command 'unfence' (rollback; or a stale one) */
inline cmdUnfence(i, e, g) {
  if
  :: ACCEPT(i, e, g) && primary[i] ->
     takeFencing(i, e, g);
     applyLog = false;
     if :: fenced[i] -> fenced[i] = false; printf("@ I%d unfenced (epoch %d): consumes P again\n", i, e) :: else -> printf("@ I%d unshadowed (epoch %d): stops writing the apply log\n", i, e) fi
  :: else -> printf("@ I%d refuses unfence of epoch %d (stale)\n", i, e)
  fi
}

/* command 'activate' (service/core/commands.ts) */
inline cmdActivate(e, g) {
  if
  :: ACCEPT(C, e, g) && !primary[C] && !replaying ->
     takeFencing(C, e, g);
     primary[C] = true; upTo = NONE; owed = 0;
     printf("@ copy activated (epoch %d): consumes P once it is P's only consumer\n", e)
  :: ACCEPT(C, e, g) && (primary[C] || replaying) -> skip
  :: else -> printf("@ copy refuses activate of epoch %d (stale)\n", e)
  fi
}

/* caughtUp (service/core/deliveries.ts): at the fenced position the copy stops reading the log */
inline caughtUp() {
#ifdef MUTANT_A
  if :: upTo != NONE && replaying && MARK(C, 0) >= srcMark[0] && MARK(C, 1) >= srcMark[1] -> replaying = false; onR = false :: else -> skip fi
#else
  if :: upTo != NONE && replaying && applied[C] >= upTo -> replaying = false; onR = false :: else -> skip fi
#endif
}

inline takeOver() {
  replaying = false; onR = false; adopting = false; sealed = false; primary[C] = true; upTo = NONE;
  printf("@ copy reached the end of the sealed log: primary, consumes P\n")
}

/* is the caught-up copy where the fenced source is? (handoffRefusal, service/protocol.ts, strengthened:
   the real digest is a hash of the state, here the apply sequence itself is compared) */
inline exactNow(res) {
  res = (applied[C] == srcApplied && MARK(C, 0) == srcMark[0] && MARK(C, 1) == srcMark[1] && has[C] == has[S] && !replayGaps);
  k2 = 0;
  do
  :: k2 < W && k2 < applied[S] -> if :: ORD(C, k2) != ORD(S, k2) -> res = false :: else -> skip fi; k2++
  :: else -> break
  od;
  k2 = 0
}

/* ======================================================================================= producers */
proctype Producers() {
  byte m;
end:
  do
  :: atomic { pub[0] < NS -> pub[0]++; m = MSG(0, pub[0]); appendP(m); published = published | BIT(m); printf("@ producer 0 publishes m%d (p0#%d)\n", m, pub[0]); m = 0 }
  :: atomic { pub[1] < NS -> pub[1]++; m = MSG(1, pub[1]); appendP(m); published = published | BIT(m); printf("@ producer 1 publishes m%d (p1#%d)\n", m, pub[1]); m = 0 }
#ifdef MUTANT_A
  /* the exchange enqueues in R per publishing channel: in another cross-producer order than in P */
  :: atomic { Rbound && Rexists && routedR[0] < pub[0] -> routedR[0]++; appendR(MSG(0, routedR[0])); printf("@ exchange routes p0#%d to R\n", routedR[0]) }
  :: atomic { Rbound && Rexists && routedR[1] < pub[1] -> routedR[1]++; appendR(MSG(1, routedR[1])); printf("@ exchange routes p1#%d to R\n", routedR[1]) }
  :: atomic { cutPending -> cutPending = false; appendR(CUT); printf("@ exchange routes the cut marker to R\n") }
#endif
  od
}

/* ======================================================================================= an instance */
proctype Instance(byte i) {
  byte m; byte e;
end:
  do
  /* a delivery from P: skip what the marks hold, else apply, log (if shadowed), emit; the ack comes after */
  :: atomic { alive[i] && onP[i] && inflight[i] == NONE && Plen > 0 ->
       m = P[0]; popP();
       if
#ifdef MUTANT_A
       :: m == CUT -> sawCut = true; printf("@ I%d applies the cut marker\n", i)
#endif
#ifdef MUTANT_M
       :: false ->
#else
       :: m < NM && SEQ(m) <= MARK(i, PROD(m)) ->
#endif
          printf("@ I%d skips m%d (at or below its mark), acks\n", i, m);
          if
          :: i == C && primary[C] && (owed & BIT(m)) ->
             owed = owed & ~BIT(m);
             if :: !srcLost -> bad_outputs = true; printf("@ !! copy resends outputs of m%d though the source lives\n", m) :: else -> skip fi;
             printf("@ copy emits the owed outputs of m%d, marked resent\n", m)
          :: else -> skip
          fi
#ifdef MUTANT_M
       :: m < NM ->
#else
       :: m < NM && SEQ(m) > MARK(i, PROD(m)) ->
#endif
          applyAt(i, m, applied[i]); applied[i]++;
          if
          :: i == S && applyLog -> appendR(applied[i] * 8 + m); printf("@ I%d applies m%d at position %d, logs it to R, emits\n", i, m, applied[i])
          :: else -> printf("@ I%d applies m%d at position %d, emits\n", i, m, applied[i])
          fi;
          emit(i, m);
          inflight[i] = m
       fi;
       m = 0 }
  /* the acknowledgement, once the log entry and outputs are confirmed */
  :: atomic { alive[i] && inflight[i] != NONE -> printf("@ I%d acks m%d\n", i, inflight[i]); inflight[i] = NONE }
  /* sole-consumer: attach to P only when the broker counts no other consumer */
  :: atomic { alive[i] && primary[i] && !fenced[i] && !onP[i] && !onP[1 - i] -> onP[i] = true; printf("@ I%d consumes P\n", i) }
  :: atomic { i == C && alive[C] && !primary[C] && replaying && !onR && Rexists -> onR = true; printf("@ copy consumes R\n") }
  /* a delivery from R (the copy) */
  :: atomic { i == C && alive[C] && onR && Rlen > 0 &&
#ifdef MUTANT_A
              /* holdFor: a message past the replay bound (the source's marks) waits at the head until the
                 source has applied it, or until the fence fixes the bound (then it is past the fence) */
              (R[0] >= NM || upTo != NONE || adopting || SEQ(R[0]) <= MARK(S, PROD(R[0])) || SEQ(R[0]) <= MARK(C, PROD(R[0]))) &&
#endif
              true ->
       e = R[0]; popR();
#ifdef MUTANT_A
       if
       :: e == CUT -> printf("@ copy skips the cut marker\n")
       :: e == END_E -> if :: adopting -> takeOver() :: else -> sealed = true fi
       :: e < NM && SEQ(e) <= MARK(C, PROD(e)) -> printf("@ copy skips m%d from R (marks)\n", e)
       :: e < NM && SEQ(e) > MARK(C, PROD(e)) && upTo != NONE && SEQ(e) > srcMark[PROD(e)] -> printf("@ copy holds m%d (past the bound)\n", e)
       :: e < NM && SEQ(e) > MARK(C, PROD(e)) && !(upTo != NONE && SEQ(e) > srcMark[PROD(e)]) ->
          applyAt(C, e, applied[C]); applied[C]++; owed = owed | BIT(e);
          printf("@ copy replays m%d from R (outputs suppressed)\n", e)
       fi;
#else
       if
       :: e == END_E -> printf("@ copy reads the end marker of the log\n"); if :: adopting -> takeOver() :: else -> sealed = true fi
       :: e != END_E && e / 8 <= applied[C] -> printf("@ copy skips log position %d (already applied)\n", e / 8)
       :: e != END_E && e / 8 > applied[C] && upTo != NONE && e / 8 > upTo -> printf("@ copy drops log position %d (past the fence)\n", e / 8)
       :: e != END_E && e / 8 > applied[C] && !(upTo != NONE && e / 8 > upTo) ->
          if :: e / 8 > applied[C] + 1 -> replayGaps = true; printf("@ copy: log positions %d..%d missing\n", applied[C] + 1, e / 8 - 1) :: else -> skip fi;
          applyAt(C, e % 8, e / 8 - 1); applied[C] = e / 8; owed = owed | BIT(e % 8);
          printf("@ copy replays log position %d = m%d (outputs suppressed)\n", e / 8, e % 8)
       fi;
#endif
       caughtUp();
       e = 0 }
  /* broker connection loss: unacked deliveries return; a lost confirm makes the log entry be written twice */
  :: atomic { alive[i] && connLosses < MAXCONN ->
       connLosses++;
       printf("@ I%d loses its broker connection\n", i);
       if
       :: i == S && applyLog && inflight[S] != NONE -> appendR(applied[S] * 8 + inflight[S]); printf("@ source republishes its unconfirmed log entry (position %d twice in R)\n", applied[S])
       :: true -> skip
       fi;
       dropConnection(i) }
  /* crashes: the source once its copy exists (else there is nothing to migrate to), also at any step of a
     rollback (the F2 interleavings); the copy until it serves */
  :: atomic { alive[i] && crashes < MAXCRASH &&
              ((i == S && copyExists && ((phase >= PH_REPLAY && phase <= PH_FENCE) || SRC_DIES_IN_ROLLBACK)) ||
               (i == C && copyExists && !primary[C] && !srcLost && phase <= PH_FENCE)) ->
       crashes++; alive[i] = false;
       printf("@ I%d CRASHES\n", i);
       if
       :: i == S && phase == PH_ROLLBACK ->
          srcDiedInRollback = true;
          /* unfenced by the rollback and no longer shadowing: it consumed P as a serving instance again */
          if :: !fenced[S] && !applyLog -> srvCrash = true; printf("@ (the source served again, unfenced: an ordinary crash of a serving instance)\n") :: else -> skip fi
       :: else -> skip
       fi;
       dropConnection(i);
       if :: i == S -> srcLost = true :: else -> skip fi }
  od
}

/* ======================================================================================= stale commands */
/* a command of an earlier migration (epoch 0) that arrives late (expiry not modelled) */
proctype Stale() {
  if
  :: atomic { alive[S] && phase >= PH_FENCE -> cmdUnfence(S, OLD_EPOCH, OLD_MIG) }
  :: atomic { alive[S] && phase >= PH_PREPARE && phase < PH_FENCE -> cmdUnfence(S, OLD_EPOCH, OLD_MIG) }
  :: atomic { alive[C] && copyExists -> cmdActivate(OLD_EPOCH, OLD_MIG) }
  fi
}

/* ======================================================================================= orchestrator */
/* the catch-up may time out (timeouts.catchUpMs), also after the fenced source died; the replay may be cancelled at
   any moment, also after the source died: both are definite failures, so no step asks whether the source lives,
   and the rollback has to (finding F1, model/README.md) */
#define RESTART(l) if :: true -> skip :: restarts < MAXRESTART -> restarts++; printf("@ orchestrator restarts: the activity is retried\n"); goto l fi

proctype Orchestrator() {
  bool ok;
  /* validate: the source serves; fencing.epoch = source's epoch + 1 */
  phase = PH_PREPARE;
#ifndef MUTANT_B
prepare:
  atomic {
    Rexists = true;
#ifdef MUTANT_A
    Rbound = true; routedR[0] = pub[0]; routedR[1] = pub[1];
    takeFencing(S, OUR_EPOCH, OUR_MIG);
    printf("@ orchestrator binds R to the exchange\n")
#else
    takeFencing(S, OUR_EPOCH, OUR_MIG); applyLog = true;
    printf("@ orchestrator: shadow: the source writes its apply log from position %d\n", applied[S] + 1)
#endif
  }
  RESTART(prepare);
#ifdef MUTANT_A
  atomic { appendP(CUT); cutPending = true; printf("@ orchestrator publishes the cut marker\n") }
  sawCut -> skip;
#endif
#endif
  phase = PH_CHECKPOINT;
checkpoint:
  atomic {
    imgApplied = applied[S]; imgMark[0] = MARK(S, 0); imgMark[1] = MARK(S, 1); imgHas = has[S];
    imgEpoch = epoch[S]; imgMig = migId[S];
    k = 0; do :: k < W -> imgOrd[k] = ORD(S, k); k++ :: else -> break od; k = 0;
    printf("@ checkpoint of the source at position %d\n", imgApplied)
  }
  RESTART(checkpoint);
#ifdef MUTANT_B
  atomic {
    Rexists = true; takeFencing(S, OUR_EPOCH, OUR_MIG); applyLog = true;
    printf("@ orchestrator (late): shadow: the source writes its apply log from position %d\n", applied[S] + 1)
  }
#endif
  phase = PH_RESTORE;
  atomic {
    alive[C] = true; primary[C] = false; fenced[C] = false; epoch[C] = imgEpoch; migId[C] = imgMig;
    applied[C] = imgApplied; MARK(C, 0) = imgMark[0]; MARK(C, 1) = imgMark[1]; has[C] = imgHas;
    k = 0; do :: k < W -> ORD(C, k) = imgOrd[k]; k++ :: else -> break od; k = 0;
    copyExists = true;
    printf("@ copy restored at position %d: standby, outputs suppressed\n", applied[C])
  }
  phase = PH_REPLAY;
startReplay:
  if
  :: !alive[C] -> goto rollback
  :: atomic { alive[C] -> replaying = true; printf("@ orchestrator: copy, replay R\n") }
  fi;
  RESTART(startReplay);
  /* replayUntil: threshold, stall or cutoff: any moment may be the one the stop rule picks */
  if
  :: !alive[S] -> goto adopt
  :: !alive[C] -> goto rollback
  :: alive[S] && alive[C] -> printf("@ orchestrator: replay ends (threshold, stall or cutoff)\n")
  /* the replay phase is cancellable: a cancellation is a definite failure, whoever lives */
  :: atomic { true -> printf("@ migration cancelled during the replay: roll back\n"); phase = PH_ROLLBACK; rbCause = 2 }; goto rollback
  fi;

  /* ---- fenceAndSwap (activities/broker.ts) */
  phase = PH_FENCE;
#ifdef MUTANT_D
  /* the copy is brought to the source's current position and activated, the source fenced after */
  if
  :: !alive[S] -> goto adopt
  :: !alive[C] -> goto rollback
  :: atomic { alive[S] && alive[C] -> srcApplied = applied[S]; srcMark[0] = MARK(S, 0); srcMark[1] = MARK(S, 1); upTo = srcApplied; caughtUp(); printf("@ orchestrator: copy, catch up to the source's position %d (source NOT fenced)\n", srcApplied) }
  fi;
  if
  /* compared with the status the catch-up was given (the source, not fenced, may have moved on since) */
  :: atomic { alive[C] && !replaying -> ok = (applied[C] == srcApplied && MARK(C, 0) == srcMark[0] && MARK(C, 1) == srcMark[1] && !replayGaps) }
  :: !alive[C] -> goto rollback
  :: atomic { true -> printf("@ catch-up timeout (timeouts.catchUpMs): roll back\n"); phase = PH_ROLLBACK; rbCause = 1 }; goto rollback
  fi;
  if :: !ok -> goto rollback :: else -> skip fi;
  if :: atomic { alive[C] -> cmdActivate(OUR_EPOCH, OUR_MIG) } :: !alive[C] -> goto rollback fi;
  if
  :: !alive[S] -> goto swapped
  :: atomic { alive[S] -> fenced[S] = true; onP[S] = false; printf("@ orchestrator: fence the source\n") }
  fi;
  /* the fence answers once what P delivered is applied and acknowledged */
  (!alive[S] || inflight[S] == NONE) -> skip;
  goto swapped;
#else
fenceAndSwap:
  /* before: the copy's status; a retry after the swap reports the swap */
  if
  :: !alive[C] -> goto rollback
  :: alive[C] && primary[C] -> printf("@ (retry) the copy serves already\n"); goto swapped
  :: alive[C] && !primary[C] -> skip
  fi;
  /* fence: the source stops consuming P, applies what P delivered, confirms, reports position, marks, digest */
  if
  :: !alive[S] -> goto adopt
  :: atomic { alive[S] -> takeFencing(S, OUR_EPOCH, OUR_MIG); if :: !fenced[S] -> printf("@ orchestrator: fence the source\n") :: else -> skip fi; fenced[S] = true; onP[S] = false }
  fi;
  if
  :: !alive[S] -> goto adopt
  :: atomic { alive[S] && inflight[S] == NONE -> srcApplied = applied[S]; srcMark[0] = MARK(S, 0); srcMark[1] = MARK(S, 1); printf("@ fenced source reports position %d, marks p0#%d p1#%d\n", srcApplied, srcMark[0], srcMark[1]) }
  fi;
  RESTART(fenceAndSwap);
#ifdef MUTANT_C
  /* no catch-up: the copy is compared where it stands */
  if
  :: !alive[C] -> goto rollback
  :: atomic { alive[C] -> exactNow(ok); if :: !ok -> bad_exact = true; printf("@ !! the copy is compared at position %d, the source at %d\n", applied[C], srcApplied) :: else -> skip fi;
              if :: ok -> replaying = false; onR = false :: else -> skip fi }
  fi;
  if :: !ok -> printf("@ handoff refused: StateMismatch\n"); goto rollback :: else -> skip fi;
  if :: atomic { alive[C] -> cmdActivate(OUR_EPOCH, OUR_MIG) } :: !alive[C] -> goto rollback fi;
  goto swapped;
#else
  /* catch-up(upTo = the fenced position, activateIf = the source's status) */
  if
  :: !alive[C] -> goto rollback
  :: atomic { alive[C] -> if :: !primary[C] -> upTo = srcApplied :: else -> skip fi; caughtUp(); printf("@ orchestrator: copy, catch up to position %d\n", srcApplied) }
  fi;
  RESTART(fenceAndSwap);
  /* the copy answers once it stands there (the activity re-sends the catch-up until then) */
  if
  :: atomic { alive[C] && (primary[C] || !replaying) -> exactNow(ok);
              if :: !ok && !primary[C] -> bad_exact = true; printf("@ !! the caught-up copy differs from the fenced source\n") :: else -> skip fi }
#ifndef MUTANT_T
  :: !alive[C] -> goto rollback
  :: atomic { true -> printf("@ catch-up timeout (timeouts.catchUpMs): roll back\n"); phase = PH_ROLLBACK; rbCause = 1 }; goto rollback
#endif
  fi;
  /* activateIf: exact by handoffRefusal, the copy takes over in the same command */
  if
  :: primary[C] -> skip
  :: atomic { !primary[C] && ok && alive[C] -> cmdActivate(OUR_EPOCH, OUR_MIG) }
  :: !primary[C] && ok && !alive[C] -> goto rollback
  :: !primary[C] && !ok -> printf("@ handoff refused: StateMismatch\n"); goto rollback
  fi;
  RESTART(fenceAndSwap);
  goto swapped;
#endif
#endif

swapped:
  /* finalize: stop the source, delete R */
  phase = PH_FINALIZE;
  atomic { if :: alive[S] -> alive[S] = false; dropConnection(S) :: else -> skip fi; deleteR(); outcome = MIGRATED; printf("@ finalize: source stopped, R deleted: MIGRATED\n") }
  goto finished;

rollback:
  phase = PH_ROLLBACK;
#ifndef MUTANT_F1_ROLLBACK_WHEN_SOURCE_DEAD
  /* patch adopt-if-source-dead-at-rollback (workflows/migration-rollback.ts, unfenceFirstOrAdopt(),
     called from migrate()'s catch): no adoption yet, the copy may exist (copyMayExist), R exists, the strategy shadows (first
     hop). The source is unfenced first, while the copy and R still exist: its answer proves it lives and serves P
     again, and the ordinary rollback follows (the undo's own unfence skipped). No answer: the node agents are asked;
     a dead source and a live copy mean adoption (sealReplay + adopt, then finalize) instead of the rollback.
     MUTANT_F2_LOOK_THEN_STOP: the first F1 fix, the look alone (the source may die right after it). */
  if
  :: copyExists && Rexists ->
#ifndef MUTANT_F2_LOOK_THEN_STOP
     atomic {
       if
       :: alive[S] -> cmdUnfence(S, OUR_EPOCH, OUR_MIG); unfencedFirst = true;
          printf("@ orchestrator: rollback unfences the source first: it answers (it lives, serves P again)\n")
       :: else -> printf("@ orchestrator: rollback unfences the source first: no answer\n")
       fi
     };
     if
     :: unfencedFirst -> rbCause = 0; printf("@ orchestrator: at rollback the source lives (it answered the unfence): roll back\n")
     :: else ->
#endif
        if
        :: atomic { !alive[S] && alive[C] ->
             f1adopt = rbCause; rbCause = 0; f2adopt = srcDiedInRollback;
             printf("@ orchestrator: at rollback the source is gone and its copy lives: adopt instead\n") }; goto adopt
        :: else -> rbCause = 0; printf("@ orchestrator: at rollback the source lives (or the copy is gone): roll back\n")
        fi
#ifndef MUTANT_F2_LOOK_THEN_STOP
     fi
#endif
  :: else -> rbCause = 0; printf("@ orchestrator: rollback (no copy, or no R)\n")
  fi;
#endif
  atomic { if :: alive[C] -> alive[C] = false; dropConnection(C); printf("@ rollback: copy stopped\n") :: else -> skip fi }
  atomic { if :: alive[S] && !unfencedFirst -> cmdUnfence(S, OUR_EPOCH, OUR_MIG) :: else -> skip fi }
  atomic { deleteR(); outcome = ROLLED_BACK; printf("@ rollback: R deleted: ROLLED BACK\n") }
  goto finished;

adopt:
  /* the source is gone once its copy exists: seal the log, the copy replays it to the end and serves */
  phase = PH_ADOPT;
  atomic { appendR(END_E); printf("@ orchestrator: source lost; R sealed with an end marker\n") }
  atomic {
    if
    :: primary[C] -> skip
    :: !primary[C] -> adopting = true; upTo = NONE; printf("@ orchestrator: copy, adopt the stream\n");
       if :: sealed -> takeOver() :: !sealed && !replaying -> replaying = true :: else -> skip fi
    fi
  }
  primary[C] -> skip;
  atomic { deleteR(); outcome = ADOPTED; printf("@ finalize: R deleted: ADOPTED\n") }

finished:
  /* the end state: who serves, and is every published message applied by it or still waiting for it */
  atomic {
    k = (outcome == ROLLED_BACK -> S : C);
    /* exactly one live, unfenced primary, and no other instance alive. After srvCrash (the source, unfenced by the
       rollback, served again and crashed: outside the migration) the service is down as after any crash: the
       migration must have left no other instance alive */
    if
    :: srvCrash && (alive[S] || alive[C]) -> bad_consumers = true; printf("@ !! an instance still lives after the serving source crashed\n")
    :: !srvCrash && !(alive[k] && primary[k] && !fenced[k] && !alive[1 - k]) -> bad_consumers = true; printf("@ !! not exactly one serving instance\n")
    :: else -> skip
    fi;
    k2 = 0;
    do
    :: k2 < NM ->
       if
       :: (published & BIT(k2)) && !(alive[k] && (has[k] & BIT(k2))) ->
          /* still in P, above the serving instance's mark? */
          ok = false;
          ok = (P[0] == k2 && Plen > 0) || (P[1] == k2 && Plen > 1) || (P[2] == k2 && Plen > 2) || (P[3] == k2 && Plen > 3) ||
               (P[4] == k2 && Plen > 4) || (P[5] == k2 && Plen > 5) || (P[6] == k2 && Plen > 6) || (P[7] == k2 && Plen > 7);
          if
          /* srvCrash: what the crashed serving source held is gone with it, as in any crash; nothing else may be */
          :: srvCrash -> ok = ok || (has[S] & BIT(k2))
          :: else -> ok = ok && alive[k] && SEQ(k2) > MARK(k, PROD(k2))
          fi;
          if :: !ok -> bad_loss = true; printf("@ !! m%d (p%d#%d) is lost: not applied by the serving instance, not waiting in P\n", k2, PROD(k2), SEQ(k2)) :: else -> skip fi
       :: else -> skip
       fi;
       k2++
    :: else -> break
    od;
    k2 = 0; k = 0; ok = false;
    phase = PH_DONE; done = true;
    printf("@ END: outcome %d\n", outcome)
  }
}

init {
  atomic {
    k = 0; do :: k < 2 * W -> ord[k] = NONE; k++ :: else -> break od; k = 0;
    k = 0; do :: k < W -> imgOrd[k] = NONE; k++ :: else -> break od; k = 0;
    alive[S] = true; primary[S] = true; inflight[S] = NONE; inflight[C] = NONE; upTo = NONE;
    run Producers();
    run Instance(S);
    run Instance(C);
    run Stale();
    run Orchestrator()
  }
}
