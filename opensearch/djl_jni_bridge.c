/*
 * The three JNI entry points DJL 0.31.1's PyTorch engine calls that the newest JNI on Maven Central for
 * libtorch 1.13.1 (pytorch-jni 1.13.1-0.22.0) lacks. ML-Commons 2.19 runs DJL 0.31.1 on libtorch 1.13.1;
 * DJL serves the matching JNI from its own site only, which an offline node cannot reach.
 *
 * local.sh builds this file into <libtorch>/0.31.1-libdjl_torch.so, linked against the 0.22.0 JNI: the JVM
 * resolves every other native method of ai.djl.pytorch.jni.PyTorchLibrary in that library (dlsym searches
 * a library's dependencies). DJL 0.31.1 calls these three only in JniUtils.getByteBuffer, to copy a
 * tensor out (e.g. SparseEncodingTranslator's nonzero()/toLongArray()): the copy is made by the 0.22.0
 * torchDataPtr, which densifies and makes the tensor contiguous itself, and is handed back as a heap
 * ByteBuffer wrapping that array.
 */
#include <jni.h>

JNIEXPORT jbyteArray JNICALL Java_ai_djl_pytorch_jni_PyTorchLibrary_torchDataPtr(JNIEnv *, jobject, jlong);
JNIEXPORT jlong JNICALL Java_ai_djl_pytorch_jni_PyTorchLibrary_tensorClone(JNIEnv *, jobject, jlong);

/* torchDirectByteBuffer below copies through torchDataPtr, which needs no contiguous input. */
JNIEXPORT jboolean JNICALL Java_ai_djl_pytorch_jni_PyTorchLibrary_torchIsContiguous(JNIEnv *env, jobject self,
                                                                                    jlong handle) {
  (void)env;
  (void)self;
  (void)handle;
  return JNI_TRUE;
}

/* A new tensor handle that DJL owns and frees, as the 0.31.1 entry point returns. */
JNIEXPORT jlong JNICALL Java_ai_djl_pytorch_jni_PyTorchLibrary_torchToContiguous(JNIEnv *env, jobject self,
                                                                                 jlong handle) {
  return Java_ai_djl_pytorch_jni_PyTorchLibrary_tensorClone(env, self, handle);
}

/* The tensor's bytes in a ByteBuffer: ByteBuffer.wrap(torchDataPtr(handle)). */
JNIEXPORT jobject JNICALL Java_ai_djl_pytorch_jni_PyTorchLibrary_torchDirectByteBuffer(JNIEnv *env, jobject self,
                                                                                      jlong handle) {
  jbyteArray bytes = Java_ai_djl_pytorch_jni_PyTorchLibrary_torchDataPtr(env, self, handle);
  if (bytes == NULL || (*env)->ExceptionCheck(env)) {
    return NULL;
  }
  jclass buffer = (*env)->FindClass(env, "java/nio/ByteBuffer");
  if (buffer == NULL) {
    return NULL;
  }
  jmethodID wrap = (*env)->GetStaticMethodID(env, buffer, "wrap", "([B)Ljava/nio/ByteBuffer;");
  if (wrap == NULL) {
    return NULL;
  }
  return (*env)->CallStaticObjectMethod(env, buffer, wrap, bytes);
}
