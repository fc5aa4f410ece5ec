/* sal.h - host build: the source annotation language markers compile to nothing.
 * Clean-room for callout-harness (harness/csim); names from the public SAL docs. */
#ifndef CSIM_SAL_H
#define CSIM_SAL_H
#define _In_
#define _In_opt_
#define _Out_
#define _Out_opt_
#define _Inout_
#define _Inout_opt_
#define _In_reads_(n)
#define _In_reads_bytes_(n)
#define _In_reads_bytes_opt_(n)
#define _Out_writes_(n)
#define _Out_writes_bytes_(n)
#define _Out_writes_bytes_opt_(n)
#define _Outptr_
#define _Outptr_opt_
#define _Outptr_result_maybenull_
#define _Ret_maybenull_
#define _Must_inspect_result_
#define _Success_(x)
#define _Check_return_
#define _IRQL_requires_(x)
#define _IRQL_requires_max_(x)
#define _IRQL_requires_min_(x)
#define _IRQL_raises_(x)
#define _IRQL_saves_
#define _IRQL_restores_
#define _IRQL_saves_global_(k, v)
#define _IRQL_restores_global_(k, v)
#define _IRQL_requires_same_
#define _Function_class_(x)
#define _Dispatch_type_(x)
#define _Use_decl_annotations_
#define _Requires_lock_held_(x)
#define _Acquires_lock_(x)
#define _Releases_lock_(x)
#define _Analysis_assume_(x)
#define _When_(c, a)
#define _At_(t, a)
#define _Null_terminated_
#define _Printf_format_string_
#define _Field_size_(n)
#define _Field_size_bytes_(n)
#define _Field_size_opt_(n)
#define _Reserved_
#define __drv_aliasesMem
#define __drv_allocatesMem(k)
#define __drv_freesMem(k)
#endif
